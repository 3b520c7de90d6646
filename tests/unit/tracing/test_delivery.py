"""LogDelivery against an in-process transport: retries, headers, budget, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from app.tracing import DeliveryError, LogDelivery

Handler = Callable[[httpx.Request], httpx.Response]


def _delivery(handler: Handler, **kwargs: float) -> LogDelivery:
    options = {"total_budget": 2.0, "backoff_initial": 0.01, "backoff_max": 0.05, **kwargs}
    return LogDelivery(base_url="http://pl.test/", api_key="k",
                       transport=httpx.MockTransport(handler), **options)


class Script:
    """Answers with the given statuses in turn (the last one repeats) and records requests."""

    def __init__(self, *statuses: int | type[Exception]) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, type):
            raise status("scripted failure")
        body = {"id": len(self.requests), "success": True}
        return httpx.Response(status, json=body if status < 300 else {"message": "no"})


async def test_submit_posts_body_with_key_and_idempotency_header() -> None:
    script = Script(201)
    delivery = _delivery(script)
    future = delivery.submit({"provider": "openai", "x": 1.5}, idempotency_key="run-1")
    assert not future.done()  # scheduled, not sent inline
    assert await future == 1
    (request,) = script.requests
    assert request.url == "http://pl.test/log-request"
    assert request.headers["X-API-KEY"] == "k"
    assert request.headers["Idempotency-Key"] == "run-1"
    assert json.loads(request.content) == {"provider": "openai", "x": 1.5}
    await delivery.aclose()


@pytest.mark.parametrize("failure", [503, 500, 429, httpx.ConnectError, httpx.ReadTimeout])
async def test_retries_transient_failures(failure: int | type[Exception]) -> None:
    script = Script(failure, failure, 201)
    delivery = _delivery(script)
    assert await delivery.submit({}, idempotency_key="r") == 3
    assert {r.headers["Idempotency-Key"] for r in script.requests} == {"r"}
    await delivery.aclose()


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_never_retries_other_client_errors(status: int) -> None:
    script = Script(status, 201)
    delivery = _delivery(script)
    assert await delivery.submit({}, idempotency_key="r") is None
    assert len(script.requests) == 1
    await delivery.aclose()


async def test_gives_up_when_the_budget_is_spent() -> None:
    script = Script(503)
    delivery = _delivery(script, total_budget=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await delivery.submit({}, idempotency_key="r") is None
    assert loop.time() - started < 0.6
    assert len(script.requests) > 2
    await delivery.aclose()


async def test_retry_after_is_honoured() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(asyncio.get_event_loop().time())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.2"})
        return httpx.Response(201, json={"id": 7})

    delivery = _delivery(handler)
    assert await delivery.submit({}, idempotency_key="r") == 7
    assert calls[1] - calls[0] >= 0.19
    await delivery.aclose()


async def test_groups_use_body_auth() -> None:
    script = Script(200)
    delivery = _delivery(script)
    assert await delivery.create_group() == 1
    assert await delivery.track_group(5, 1) is True
    create, track = script.requests
    assert create.url.path == "/create-group"
    assert json.loads(create.content) == {"api_key": "k"}
    assert json.loads(track.content) == {"api_key": "k", "request_id": 5, "group_id": 1}
    await delivery.aclose()


async def test_group_failures() -> None:
    delivery = _delivery(Script(401))
    with pytest.raises(DeliveryError):
        await delivery.create_group()
    assert await delivery.track_group(1, 2) is False
    await delivery.aclose()


async def test_aclose_awaits_in_flight_then_rejects_new_work() -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": 1})

    delivery = _delivery(ok)
    futures = [delivery.submit({}, idempotency_key=str(i)) for i in range(20)]
    await delivery.aclose(timeout=5)
    assert [f.result() for f in futures] == [1] * 20
    assert await delivery.submit({}, idempotency_key="late") is None


async def test_aclose_bounded_when_server_keeps_failing() -> None:
    delivery = _delivery(Script(503), total_budget=60)
    future = delivery.submit({}, idempotency_key="r")
    await asyncio.sleep(0.05)
    await delivery.aclose(timeout=0.1)
    assert future.done()
    assert future.result() is None


async def test_submit_from_another_thread_runs_on_the_owner_loop() -> None:
    script = Script(201)
    delivery = _delivery(script)
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
    await delivery.aclose()
