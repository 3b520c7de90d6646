"""LogDelivery against a scripted local HTTP server: retries, headers, budget, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
from collections.abc import AsyncIterator

import pytest

from promptserve.tracing import DeliveryError, LogDelivery
from tests.utils.servers import free_port
from tests.utils.stub_http import (
    DROP,
    GARBAGE,
    STALL,
    Answer,
    Handler,
    Received,
    StubServer,
    stub_server,
)


@contextlib.asynccontextmanager
async def _delivery(
    handler: Handler, **kwargs: float
) -> AsyncIterator[tuple[LogDelivery, StubServer]]:
    options = {"total_budget": 2.0, "backoff_initial": 0.01, "backoff_max": 0.05,
               "attempt_timeout": 0.2, **kwargs}
    async with stub_server(handler) as server:
        delivery = LogDelivery(base_url=server.url + "/", api_key="k", **options)
        try:
            yield delivery, server
        finally:
            await delivery.aclose()


class Script:
    """Answers with the given statuses (or DROP/STALL/GARBAGE) in turn; the last one repeats."""

    def __init__(self, *statuses: int | str) -> None:
        self.statuses = list(statuses)
        self.count = 0

    def __call__(self, request: Received) -> Answer | str:
        self.count += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, str):
            return status
        body = {"id": self.count, "success": True}
        return Answer(status, body if status < 300 else {"message": "no"})


async def test_submit_posts_body_with_key_and_idempotency_header() -> None:
    async with _delivery(Script(201)) as (delivery, server):
        future = delivery.submit({"provider": "openai", "x": 1.5}, idempotency_key="run-1")
        assert not future.done()  # scheduled, not sent inline
        assert await future == 1
        (request,) = server.received
        assert (request.method, request.path) == ("POST", "/log-request")
        assert request.headers["x-api-key"] == "k"
        assert request.headers["idempotency-key"] == "run-1"
        assert request.headers["content-type"] == "application/json"
        assert request.json() == {"provider": "openai", "x": 1.5}


async def test_odd_values_in_the_body_are_still_sent() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    body = {"keys": {1: "int", None: "none"}, "nan": math.nan, "big": 2**70, "when": when,
            "set": {1}}
    async with _delivery(Script(201)) as (delivery, server):
        assert await delivery.submit(body, idempotency_key="odd") == 1
        # NaN is not JSON (the backend refuses it): sent as null, not as the literal NaN.
        assert b"NaN" not in server.received[0].content
        assert server.received[0].json() == {
            "keys": {"1": "int", "null": "none"}, "nan": None, "big": 2**70,
            "when": "2026-01-02 03:04:05", "set": "{1}"}


@pytest.mark.parametrize("failure", [503, 500, 429, DROP, STALL, GARBAGE])
async def test_retries_transient_failures(failure: int | str) -> None:
    async with _delivery(Script(failure, failure, 201)) as (delivery, server):
        assert await delivery.submit({}, idempotency_key="r") == 3
        assert {r.headers["idempotency-key"] for r in server.received} == {"r"}
        assert delivery.stats()["failed_attempts_total"] == 2


async def test_retries_refused_connections_until_the_budget_is_spent() -> None:
    delivery = LogDelivery(base_url=f"http://127.0.0.1:{free_port()}", api_key="k",
                           total_budget=0.3, backoff_initial=0.01, backoff_max=0.05)
    assert await delivery.submit({}, idempotency_key="r") is None
    assert delivery.stats()["failed_attempts_total"] > 2
    await delivery.aclose()


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_never_retries_other_client_errors(status: int) -> None:
    async with _delivery(Script(status, 201)) as (delivery, server):
        assert await delivery.submit({}, idempotency_key="r") is None
        assert len(server.received) == 1
        assert delivery.stats()["rejected_total"] == 1


async def test_gives_up_when_the_budget_is_spent() -> None:
    async with _delivery(Script(503), total_budget=0.3) as (delivery, server):
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await delivery.submit({}, idempotency_key="r") is None
        assert loop.time() - started < 0.6
        assert len(server.received) > 2


async def test_a_stalled_attempt_is_cut_at_the_budget() -> None:
    async with _delivery(Script(STALL), total_budget=0.3, attempt_timeout=5.0) as (delivery, _):
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await delivery.submit({}, idempotency_key="r") is None
        assert loop.time() - started < 0.6


async def test_retry_after_is_honoured() -> None:
    calls: list[float] = []

    def handler(request: Received) -> Answer:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            return Answer(429, headers={"Retry-After": "0.2"})
        return Answer(201, {"id": 7})

    async with _delivery(handler) as (delivery, _):
        assert await delivery.submit({}, idempotency_key="r") == 7
        assert calls[1] - calls[0] >= 0.19


async def test_connections_are_reused() -> None:
    async with _delivery(Script(201)) as (delivery, server):
        for i in range(5):
            assert await delivery.submit({}, idempotency_key=str(i)) == i + 1
        assert server.connections == 1


async def test_a_success_without_an_id_yields_none() -> None:
    async with _delivery(lambda request: Answer(200, {"success": True})) as (delivery, _):
        assert await delivery.submit({}, idempotency_key="r") is None


async def test_groups_use_body_auth() -> None:
    async with _delivery(Script(200)) as (delivery, server):
        assert await delivery.create_group() == 1
        assert await delivery.track_group(5, 1) is True
        create, track = server.received
        assert create.path == "/create-group"
        assert create.json() == {"api_key": "k"}
        assert track.path == "/track-group"
        assert track.json() == {"api_key": "k", "request_id": 5, "group_id": 1}


async def test_group_failures() -> None:
    async with _delivery(Script(401)) as (delivery, _):
        with pytest.raises(DeliveryError):
            await delivery.create_group()
        assert await delivery.track_group(1, 2) is False


async def test_aclose_awaits_in_flight_then_rejects_new_work() -> None:
    async with stub_server(lambda request: Answer(201, {"id": 1})) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k")
        futures = [delivery.submit({}, idempotency_key=str(i)) for i in range(20)]
        await delivery.aclose(timeout=5)
        assert [f.result() for f in futures] == [1] * 20
        assert await delivery.submit({}, idempotency_key="late") is None


async def test_aclose_bounded_when_server_keeps_failing() -> None:
    async with stub_server(Script(503)) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k", total_budget=60,
                               backoff_initial=0.01, backoff_max=0.05)
        future = delivery.submit({}, idempotency_key="r")
        await asyncio.sleep(0.05)
        await delivery.aclose(timeout=0.1)
        assert future.done()
        assert future.result() is None


async def test_submit_from_another_thread_runs_on_the_owner_loop() -> None:
    async with _delivery(Script(201)) as (delivery, _):
        loop = asyncio.get_running_loop()
        holder: list[asyncio.Future[int | None]] = []

        def other_thread() -> None:
            async def callback() -> None:  # what LangChain's sync path does with async handlers
                holder.append(delivery.submit({}, idempotency_key="t"))

            asyncio.run(callback())

        await loop.run_in_executor(None, other_thread)
        (future,) = holder
        assert future.get_loop() is loop
        assert await future == 1


async def test_a_refused_log_is_counted_in_the_metrics_by_its_status() -> None:
    from prometheus_client import REGISTRY

    from app.observability import metrics

    def lost(reason: str) -> float:
        return REGISTRY.get_sample_value("promptserve_logs_failed_total", {"reason": reason}) or 0

    before = lost("rejected_422")
    async with stub_server(Script(422)) as server:
        delivery = LogDelivery(base_url=server.url + "/", api_key="k", metrics=metrics,
                               total_budget=2.0, backoff_initial=0.01, attempt_timeout=0.2)
        try:
            assert await delivery.submit({}, idempotency_key="r") is None
        finally:
            await delivery.aclose()
    assert lost("rejected_422") == before + 1
