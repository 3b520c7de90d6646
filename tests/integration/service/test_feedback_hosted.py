"""/feedback on a real service pointed (PROMPTLAYER_BASE_URL) at a stub that behaves like the
hosted PromptLayer: 400 for an unknown request id, 503 for a while during an outage.

404 for an unknown id; during the outage 202 within a second, the score kept on disk and
applied once the outage ends, also when the service restarts in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.service import create_app
from tests.integration.service.conftest import SERVICE_KEY, service_settings
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread
from tests.utils.stub_http import Answer, Received, StubServer, stub_server

HOSTED_KEY = "hosted-promptlayer-key-for-tests"
KNOWN = 4242
UNKNOWN = 987654
AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}


@dataclass
class Hosted:
    """The hosted tracking calls: 400 for an unknown id; 503 to everything while `down`."""

    known: set[int] = field(default_factory=lambda: {KNOWN})
    down: bool = False
    scores: dict[tuple[int, str], int] = field(default_factory=dict)
    metadata: dict[int, dict[str, str]] = field(default_factory=dict)

    def __call__(self, request: Received) -> Answer:
        if self.down:
            return Answer(503, {"message": "Service Unavailable"})
        body = request.json()
        if body.get("api_key") != HOSTED_KEY:
            return Answer(401, {"success": False, "message": "Invalid API key"})
        request_id = body.get("request_id")
        if request.path not in ("/library-track-score", "/library-track-metadata"):
            return Answer(404, {"success": False, "message": "not served by this stub"})
        if request_id not in self.known:
            return Answer(400, {"success": False, "message": "Request not found"})
        if request.path == "/library-track-score":
            self.scores[(request_id, body.get("name", "default"))] = body["score"]
        else:
            self.metadata.setdefault(request_id, {}).update(body["metadata"])
        return Answer(200, {"success": True, "message": "ok"})


@contextlib.asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[str]:
    """The service in a thread, started and stopped off this loop (which serves the stub)."""
    running = serve_in_thread(create_app(settings, chains=[]))
    url = await asyncio.to_thread(running.__enter__)
    try:
        yield url
    finally:
        await asyncio.to_thread(running.__exit__, None, None, None)


@pytest.fixture
async def hosted() -> AsyncIterator[tuple[Hosted, StubServer]]:
    state = Hosted()
    async with stub_server(state) as server:
        yield state, server


@pytest.fixture
def settings_for(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> Callable[[str], Settings]:
    def settings(base_url: str) -> Settings:
        return service_settings(tmp_path / "data", fake_llm[1], promptlayer_base_url=base_url,
                                promptlayer_api_key=HOSTED_KEY)

    return settings


async def _post(url: str, body: dict[str, Any]) -> tuple[httpx.Response, float]:
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        response = await client.post(f"{url}/feedback", json=body, headers=AUTH)
        return response, time.monotonic() - started


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_known_request_is_scored_on_the_hosted_service(hosted, settings_for) -> None:
    state, server = hosted
    async with _serving(settings_for(server.url)) as url:
        response, _ = await _post(url, {"request_id": KNOWN, "score": 90, "comment": "good"})
    assert response.status_code == 200, response.text
    assert response.json() == {"request_id": KNOWN, "name": "default", "score": 90,
                               "comment_recorded": True}
    assert state.scores == {(KNOWN, "default"): 90}
    assert state.metadata == {KNOWN: {"feedback_comment:default": "good"}}


async def test_unknown_request_id_is_404_not_400(hosted, settings_for) -> None:
    _, server = hosted
    async with _serving(settings_for(server.url)) as url:
        response, _ = await _post(url, {"request_id": UNKNOWN, "score": 50})
    assert response.status_code == 404, response.text
    assert str(UNKNOWN) in response.json()["detail"]


async def test_outage_answers_202_within_a_second_and_applies_after_it(
    hosted, settings_for
) -> None:
    state, server = hosted
    state.down = True
    async with _serving(settings_for(server.url)) as url:
        response, elapsed = await _post(
            url, {"request_id": KNOWN, "score": 35, "name": "tone", "comment": "meh"})
        assert response.status_code == 202, response.text
        assert elapsed < 1.0, f"answered after {elapsed:.2f} s"
        assert response.json() == {"request_id": KNOWN, "name": "tone", "score": 35,
                                   "comment_recorded": True, "pending": True}
        await asyncio.sleep(1.5)  # a retry or two meet the outage
        assert state.scores == {}
        state.down = False
        await _until(lambda: state.scores == {(KNOWN, "tone"): 35}
                     and KNOWN in state.metadata)
    assert state.metadata == {KNOWN: {"feedback_comment:tone": "meh"}}


async def test_a_score_kept_in_an_outage_survives_a_restart(hosted, settings_for) -> None:
    state, server = hosted
    state.down = True
    settings = settings_for(server.url)
    async with _serving(settings) as url:
        response, elapsed = await _post(url, {"request_id": KNOWN, "score": 12})
        assert response.status_code == 202, response.text
        assert elapsed < 1.0
    assert state.scores == {}
    state.down = False
    async with _serving(settings):
        await _until(lambda: state.scores == {(KNOWN, "default"): 12})
        pending_file = settings.spool_dir / "feedback.jsonl"
        await _until(lambda: b'"op": "done"' in pending_file.read_bytes())


async def test_an_unknown_id_given_during_an_outage_is_dropped_after_it(
    hosted, settings_for
) -> None:
    state, server = hosted
    state.down = True
    settings = settings_for(server.url)
    async with _serving(settings) as url:
        response, _ = await _post(url, {"request_id": UNKNOWN, "score": 1})
        assert response.status_code == 202, response.text
        state.down = False
        pending_file = settings.spool_dir / "feedback.jsonl"
        await _until(lambda: b'"op": "done"' in pending_file.read_bytes())
    assert state.scores == {}
