"""FeedbackService against a stub of the hosted PromptLayer, through the real SDK client:
an unknown id (400 there, 404 on the embedded backend) is a 404; an outage (5xx, 429, a stall,
a dropped or refused connection) keeps the score on disk within a second, and the retry
applies it once PromptLayer answers again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import HTTPException
from promptlayer import AsyncPromptLayer

from app.feedback import FeedbackTokens
from app.feedback._pending import PendingFeedback
from app.feedback._routes import FeedbackIn, FeedbackService
from app.keys import KeyRing
from tests.utils.servers import free_port
from tests.utils.stub_http import DROP, STALL, Answer, Received, StubServer, stub_server

HOSTED_KEY = "hosted-key-for-tests"
KNOWN = 101
RUN = "5b0c2a9e-8a7e-4c1b-9d6a-0f1e2d3c4b5a"


@dataclass
class Hosted:
    """The hosted service's tracking calls: 400 for an unknown id, 401 for a wrong key;
    `failure`, while set, is the answer to everything (an outage)."""

    known: set[int] = field(default_factory=lambda: {KNOWN})
    failure: Answer | str | None = None
    scores: dict[tuple[int, str], int] = field(default_factory=dict)
    metadata: dict[int, dict[str, str]] = field(default_factory=dict)

    def __call__(self, request: Received) -> Answer | str:
        if self.failure is not None:
            return self.failure
        body = request.json()
        if body.get("api_key") != HOSTED_KEY:
            return Answer(401, {"success": False, "message": "Invalid API key"})
        request_id = body["request_id"]
        if request_id not in self.known:
            return Answer(400, {"success": False, "message": f"Request {request_id} not found"})
        if request.path == "/library-track-score":
            self.scores[(request_id, body.get("name", "default"))] = body["score"]
        elif request.path == "/library-track-metadata":
            self.metadata.setdefault(request_id, {}).update(body["metadata"])
        else:
            return Answer(404, {"success": False, "message": "no such route"})
        return Answer(200, {"success": True, "message": "ok"})


@dataclass
class Setup:
    hosted: Hosted
    server: StubServer
    service: FeedbackService
    pending: PendingFeedback


def _service(base_url: str, pending: PendingFeedback | None, **kwargs: Any) -> FeedbackService:
    return FeedbackService(
        tokens=FeedbackTokens(secret=b"s" * 32, ttl_seconds=3600),
        keys=KeyRing([]),
        client=AsyncPromptLayer(api_key=HOSTED_KEY, base_url=base_url),
        pending=pending,
        **kwargs,
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    hosted = Hosted()
    pending = PendingFeedback(tmp_path / "feedback.jsonl", max_age_seconds=3600)
    async with stub_server(hosted) as server:
        yield Setup(hosted, server, _service(server.url, pending), pending)


def _feedback(request_id: int = KNOWN, **extra: Any) -> FeedbackIn:
    return FeedbackIn(request_id=request_id, score=80, name="helpfulness", **extra)


async def test_a_known_request_is_scored_with_its_comment(setup: Setup) -> None:
    out = await setup.service.submit(_feedback(comment="nice"))
    assert (out.request_id, out.score, out.pending, out.comment_recorded) == (KNOWN, 80, False,
                                                                             True)
    assert setup.hosted.scores == {(KNOWN, "helpfulness"): 80}
    assert setup.hosted.metadata == {KNOWN: {"feedback_comment:helpfulness": "nice"}}
    assert setup.pending.waiting_keys() == []


async def test_the_hosted_400_for_an_unknown_id_is_a_404(setup: Setup) -> None:
    with pytest.raises(HTTPException) as raised:
        await setup.service.submit(_feedback(request_id=999))
    assert raised.value.status_code == 404
    assert "999" in raised.value.detail
    assert setup.pending.waiting_keys() == []


async def test_the_embedded_404_for_an_unknown_id_stays_a_404(setup: Setup) -> None:
    setup.hosted.failure = Answer(404, {"message": "request_id 999 not found"})
    with pytest.raises(HTTPException) as raised:
        await setup.service.submit(_feedback(request_id=999))
    assert raised.value.status_code == 404
    assert setup.pending.waiting_keys() == []


async def test_a_refused_score_is_a_400_and_not_kept(setup: Setup) -> None:
    setup.hosted.failure = Answer(422, {"message": "score: not accepted"})
    with pytest.raises(HTTPException) as raised:
        await setup.service.submit(_feedback())
    assert raised.value.status_code == 400
    assert setup.pending.waiting_keys() == []


OUTAGES: dict[str, Answer | str] = {
    "500": Answer(500, {"message": "internal error"}),
    "502": Answer(502, None),
    "503": Answer(503, {"message": "unavailable"}),
    "429": Answer(429, {"message": "slow down"}),
    "401 (the service's key refused)": Answer(401, {"message": "Invalid API key"}),
    "stalled": STALL,
    "slow": Answer(200, {"success": True}, delay=5.0),
    "dropped connection": DROP,
}


@pytest.mark.parametrize("failure", OUTAGES.values(), ids=OUTAGES.keys())
async def test_an_outage_keeps_the_score_within_a_second(
    setup: Setup, failure: Answer | str
) -> None:
    setup.hosted.failure = failure
    started = time.monotonic()
    out = await setup.service.submit(_feedback(comment="kept too"))
    assert time.monotonic() - started < 1.0
    assert (out.pending, out.request_id) == (True, KNOWN)
    [kept] = setup.pending.scores(f"request:{KNOWN}")
    assert (kept.request_id, kept.score, kept.name, kept.comment) == (
        KNOWN, 80, "helpfulness", "kept too")


async def test_a_refused_connection_keeps_the_score_within_a_second(tmp_path: Path) -> None:
    pending = PendingFeedback(tmp_path / "feedback.jsonl", max_age_seconds=3600)
    service = _service(f"http://127.0.0.1:{free_port()}", pending)
    started = time.monotonic()
    out = await service.submit(_feedback())
    assert time.monotonic() - started < 1.0
    assert out.pending
    assert pending.waiting_keys() == [f"request:{KNOWN}"]


async def test_without_a_pending_store_an_outage_is_a_503(setup: Setup) -> None:
    setup.hosted.failure = Answer(503, None)
    service = _service(setup.server.url, None)
    with pytest.raises(HTTPException) as raised:
        await service.submit(_feedback())
    assert raised.value.status_code == 503


async def test_kept_scores_apply_once_the_outage_ends(setup: Setup) -> None:
    setup.hosted.failure = Answer(503, None)
    await setup.service.submit(_feedback(comment="later"))
    assert await setup.service.retry_pending() is True  # still down: kept
    assert setup.pending.waiting_keys() == [f"request:{KNOWN}"]
    setup.hosted.failure = None
    assert await setup.service.retry_pending() is False
    assert setup.hosted.scores == {(KNOWN, "helpfulness"): 80}
    assert setup.hosted.metadata == {KNOWN: {"feedback_comment:helpfulness": "later"}}
    assert setup.pending.waiting_keys() == []


async def test_a_round_stops_at_the_first_failure(setup: Setup) -> None:
    setup.hosted.failure = Answer(503, None)
    setup.hosted.known |= {102, 103}
    for request_id in (KNOWN, 102, 103):
        await setup.service.submit(_feedback(request_id=request_id))
    before = len(setup.server.received)
    assert await setup.service.retry_pending() is True
    assert len(setup.server.received) - before == 1
    assert len(setup.pending.waiting_keys()) == 3


async def test_a_kept_score_that_turns_out_unknown_is_dropped(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    setup.hosted.failure = Answer(503, None)
    await setup.service.submit(_feedback(request_id=999))
    setup.hosted.failure = None
    with caplog.at_level(logging.WARNING):
        assert await setup.service.retry_pending() is False
    assert setup.pending.waiting_keys() == []
    assert "dropped" in caplog.text
    assert HOSTED_KEY not in caplog.text


async def test_a_run_whose_log_landed_keeps_its_request_id_through_an_outage(
    tmp_path: Path, setup: Setup
) -> None:
    runs: dict[str, int] = {RUN: KNOWN}
    service = _service(setup.server.url, setup.pending, runs=runs.get)
    setup.hosted.failure = Answer(503, None)
    out = await service.submit(FeedbackIn(run_id=RUN, score=30))
    assert (out.pending, out.request_id, out.run_id) == (True, KNOWN, RUN)
    # After a restart the run's request id is not known in memory: the file has it.
    reloaded = PendingFeedback(tmp_path / "feedback.jsonl", max_age_seconds=3600)
    setup.hosted.failure = None
    assert await _service(setup.server.url, reloaded).retry_pending() is False
    assert setup.hosted.scores == {(KNOWN, "default"): 30}
    assert reloaded.waiting_keys() == []


async def test_a_run_score_kept_for_its_log_applies_when_it_lands(setup: Setup) -> None:
    runs: dict[str, int] = {}
    service = _service(setup.server.url, setup.pending, runs=runs.get)
    out = await service.submit(FeedbackIn(run_id=RUN, score=55))
    assert (out.pending, out.request_id) == (True, None)
    assert await service.retry_pending() is False  # no request id yet: nothing tried
    assert setup.server.received == []
    runs[RUN] = KNOWN
    assert await service.retry_pending() is False
    assert setup.hosted.scores == {(KNOWN, "default"): 55}


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_the_retry_loop_applies_soon_after_the_outage_ends(setup: Setup) -> None:
    setup.hosted.failure = Answer(503, None)
    # A long interval: only the loop's short retries after a kept score can apply it in time.
    loop = asyncio.create_task(setup.service.retry_pending_forever(3600, soonest=0.2))
    try:
        await asyncio.sleep(0.1)  # its first round (nothing waits yet) is done
        await setup.service.submit(_feedback())
        await asyncio.sleep(0.5)
        setup.hosted.failure = None
        await _until(lambda: (KNOWN, "helpfulness") in setup.hosted.scores)
        await _until(lambda: setup.pending.waiting_keys() == [])
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_the_retry_loop_applies_kept_scores_at_once_on_start(setup: Setup) -> None:
    setup.hosted.failure = Answer(503, None)
    await setup.service.submit(_feedback())
    setup.hosted.failure = None
    restarted = _service(setup.server.url, setup.pending)
    loop = asyncio.create_task(restarted.retry_pending_forever(3600, soonest=3600))
    try:
        await _until(lambda: setup.pending.waiting_keys() == [], timeout=2.0)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert setup.hosted.scores == {(KNOWN, "helpfulness"): 80}
