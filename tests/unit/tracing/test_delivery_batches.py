"""LogDelivery's batches against a scripted local HTTP server: when logs leave together,
how each one's own answer settles it, and the fall-back for a backend without the route."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from promptserve.tracing import BATCH_PATH, LogDelivery
from promptserve.tracing._poster import log_outcome
from tests.utils.stub_http import Answer, Handler, Received, StubServer, stub_server

SLOW = 0.3  # how long the first, lone post is held, so that others queue behind it


@contextlib.asynccontextmanager
async def _delivery(
    handler: Handler, **options: Any
) -> AsyncIterator[tuple[LogDelivery, StubServer]]:
    options = {"total_budget": 3.0, "backoff_initial": 0.01, "backoff_max": 0.05,
               "batch_posts": 1, **options}
    async with stub_server(handler) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k", **options)
        try:
            yield delivery, server
        finally:
            await delivery.aclose()


class Backend:
    """Stores what it is sent: ids count up; a log whose key starts with "first" is held
    for SLOW s; `per_log(key)` may answer one log of a batch otherwise (status, body);
    `batch_route` False answers the batch route 404, `batch_status` refuses every batch."""

    def __init__(self, *, batch_route: bool = True, per_log: Any = None,
                 batch_status: int = 200, max_entries: int = 1000) -> None:
        self.batch_route = batch_route
        self.batch_status = batch_status
        self.max_entries = max_entries  # larger batches: 413, as a body-size limit would
        self.per_log = per_log or (lambda key: None)
        self.ids: dict[str, int] = {}

    def _store(self, key: str) -> int:
        return self.ids.setdefault(key, len(self.ids) + 1)

    def __call__(self, request: Received) -> Answer:
        if request.path == "/log-request":
            key = request.headers["idempotency-key"]
            delay = SLOW if key.startswith("first") else 0.0
            return Answer(201, {"id": self._store(key)}, delay=delay)
        if not self.batch_route:
            return Answer(404, {"message": "Not Found"})
        if self.batch_status != 200:
            return Answer(self.batch_status, {"message": "no"})
        if len(request.json()["requests"]) > self.max_entries:
            return Answer(413, {"message": "request body is too large"})
        results = []
        for entry in request.json()["requests"]:
            key = entry["idempotency_key"]
            own = self.per_log(key)
            results.append({"status_code": own[0], "body": own[1]} if own else
                           {"status_code": 201, "body": {"id": self._store(key)}})
        return Answer(200, {"results": results})


async def _behind_a_slow_post(
    delivery: LogDelivery, keys: list[str], first_key: str = "first"
) -> list[int | None]:
    """Submit one log, then `keys` while its post is held; every log's id, in order."""
    first = delivery.submit({"n": first_key}, idempotency_key=first_key)
    await asyncio.sleep(SLOW / 3)  # the first has left, alone
    rest = [delivery.submit({"n": key}, idempotency_key=key) for key in keys]
    return list(await asyncio.gather(first, *rest))


async def test_logs_that_queue_behind_a_busy_post_leave_in_one_batch() -> None:
    backend = Backend()
    async with _delivery(backend) as (delivery, server):
        keys = [f"run-{i}" for i in range(5)]
        ids = await _behind_a_slow_post(delivery, keys)
        assert ids == [1, 2, 3, 4, 5, 6]
        assert [r.path for r in server.received] == ["/log-request", BATCH_PATH]
        batch = server.received[1]
        assert batch.headers["x-api-key"] == "k"
        assert batch.json() == {"requests": [
            {"idempotency_key": key, "body": {"n": key}} for key in keys]}
        stats = delivery.stats()
        assert (stats["log_posts_total"], stats["batched_logs_total"]) == (2, 5)
        assert stats["delivered_total"] == 6


async def test_a_log_alone_goes_to_log_request_as_the_sdk_sends_it() -> None:
    async with _delivery(Backend()) as (delivery, server):
        for n in range(3):
            assert await delivery.submit({"n": n}, idempotency_key=f"k{n}") == n + 1
        assert [r.path for r in server.received] == ["/log-request"] * 3


async def test_each_log_of_a_batch_is_settled_by_its_own_answer() -> None:
    refused = {"bad": (400, {"message": "model: Input should be a valid string"})}
    flaky = {"busy": (503, {"message": "try later"})}
    backend = Backend(per_log=lambda key: refused.get(key) or flaky.pop(key, None))
    async with _delivery(backend) as (delivery, server):
        ids = await _behind_a_slow_post(delivery, ["ok-1", "bad", "busy", "ok-2"])
        # The 400 is refused for good; the 503 is posted again on its own and lands.
        assert ids == [1, 2, None, 4, 3]
        assert [r.path for r in server.received] == ["/log-request", BATCH_PATH,
                                                     "/log-request"]
        assert server.received[2].headers["idempotency-key"] == "busy"
        stats = delivery.stats()
        assert (stats["rejected_total"], stats["delivered_total"]) == (1, 4)


async def test_a_backend_without_the_batch_route_gets_every_log_on_its_own() -> None:
    async with _delivery(Backend(batch_route=False)) as (delivery, server):
        ids = await _behind_a_slow_post(delivery, ["a", "b", "c"])
        assert sorted(i for i in ids if i is not None) == [1, 2, 3, 4]
        paths = [r.path for r in server.received]
        assert paths == ["/log-request", BATCH_PATH] + ["/log-request"] * 3
        # From then on it never tries a batch again.
        again = await _behind_a_slow_post(delivery, ["d", "e"], first_key="first-2")
        assert None not in again
        assert [r.path for r in server.received].count(BATCH_PATH) == 1


async def test_a_batch_refused_as_a_whole_is_sent_log_by_log_and_batching_stays_on() -> None:
    backend = Backend(batch_status=400)
    async with _delivery(backend) as (delivery, server):
        ids = await _behind_a_slow_post(delivery, ["a", "b"])
        assert sorted(ids) == [1, 2, 3]  # type: ignore[type-var]
        assert [r.path for r in server.received] == ["/log-request", BATCH_PATH,
                                                     "/log-request", "/log-request"]
        backend.batch_status = 200
        assert await _behind_a_slow_post(delivery, ["c", "d"], first_key="first-2") == [4, 5, 6]
        assert [r.path for r in server.received][-1] == BATCH_PATH


async def test_batch_max_one_sends_every_log_on_its_own() -> None:
    async with _delivery(Backend(), batch_max=1) as (delivery, server):
        ids = await _behind_a_slow_post(delivery, ["a", "b", "c"])
        assert sorted(ids) == [1, 2, 3, 4]  # type: ignore[type-var]
        assert {r.path for r in server.received} == {"/log-request"}


async def test_batches_are_capped_at_batch_max() -> None:
    async with _delivery(Backend(), batch_max=3) as (delivery, server):
        keys = [f"k{i}" for i in range(7)]
        ids = await _behind_a_slow_post(delivery, keys)
        assert None not in ids
        sizes = [len(r.json()["requests"]) for r in server.received if r.path == BATCH_PATH]
        assert sizes == [3, 3] and server.received[-1].path == "/log-request"


async def test_a_batch_too_large_for_the_backend_halves_the_batches_that_follow() -> None:
    async with _delivery(Backend(max_entries=3)) as (delivery, server):
        keys = [f"a{i}" for i in range(6)]
        assert None not in await _behind_a_slow_post(delivery, keys)
        # 6 refused (413), sent one by one; from then on at most 3 per batch, which fit.
        later = [f"b{i}" for i in range(6)]
        assert None not in await _behind_a_slow_post(delivery, later, first_key="first-2")
        sizes = [len(r.json()["requests"]) for r in server.received if r.path == BATCH_PATH]
        assert sizes == [6, 3, 3]
        assert delivery.stats()["delivered_total"] == 14


@pytest.mark.parametrize(("status", "answer", "transient", "expected"), [
    (201, {"id": 7}, False, (7, False)),
    (201, {"id": "7"}, False, (7, False)),  # a digit string, as the drain always took it
    (201, {"success": True}, False, (None, False)),  # stored, but no id to return
    (None, None, True, (None, True)),  # nothing answered
    (503, {"message": "busy"}, False, (None, True)),  # one log's own answer in a batch
    (429, None, False, (None, True)),
    (400, {"message": "model: ..."}, False, (None, False)),
])
def test_one_answer_is_read_the_same_by_delivery_and_drain(
    status: int | None, answer: Any, transient: bool, expected: tuple[int | None, bool]
) -> None:
    assert log_outcome(status, answer, transient=transient) == expected
