"""LingeringDelivery: a script's logs gathered for `linger` s, then handed over together."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from promptserve.integration._linger import LingeringDelivery
from promptserve.tracing import LogDelivery
from tests.utils.fake_delivery import FakeDelivery


def _lingering(delivery: FakeDelivery, **kwargs: Any) -> LingeringDelivery:
    return LingeringDelivery(cast(LogDelivery, delivery), asyncio.get_running_loop(), **kwargs)


def _body(n: int) -> dict[str, Any]:
    return {"n": n}


async def test_logs_within_the_linger_leave_together() -> None:
    delivery = FakeDelivery()
    logs = _lingering(delivery, linger=0.05)
    futures = [logs.submit(_body(n), idempotency_key=f"k{n}") for n in range(3)]
    await asyncio.sleep(0.01)
    assert delivery.bodies == []  # still gathering
    assert await asyncio.wait_for(asyncio.gather(*futures), 2) == [1, 2, 3]
    assert delivery.bodies == [_body(0), _body(1), _body(2)]
    assert delivery.keys == ["k0", "k1", "k2"]
    assert logs.hand_overs == 1


async def test_a_quiet_tick_stops_the_ticking_and_the_next_log_starts_it() -> None:
    logs = _lingering(FakeDelivery(), linger=0.01)
    await asyncio.wait_for(logs.submit(_body(1), idempotency_key="a"), 2)
    await asyncio.sleep(0.05)  # the tick after the hand-over found nothing
    assert logs._tick is None and not logs._ticking
    assert await asyncio.wait_for(logs.submit(_body(2), idempotency_key="b"), 2) == 2
    assert logs.hand_overs == 2


async def test_a_steady_stream_wakes_the_loop_once() -> None:
    loop = asyncio.get_running_loop()
    logs = _lingering(FakeDelivery(), linger=0.01)
    wakes = 0
    original = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal wakes
        wakes += getattr(callback, "__self__", None) is logs
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    try:
        futures = []
        for n in range(10):  # over several ticks
            futures.append(logs.submit(_body(n), idempotency_key=str(n)))
            await asyncio.sleep(0.004)
        await asyncio.wait_for(asyncio.gather(*futures), 2)
    finally:
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
    assert wakes == 1  # the first log; the ticks took the rest
    assert 2 <= logs.hand_overs < 10


async def test_hand_over_gives_everything_now() -> None:
    delivery = FakeDelivery()
    logs = _lingering(delivery, linger=60)
    future = logs.submit(_body(1), idempotency_key="a")
    assert logs.hand_over() == 1
    assert delivery.bodies == [_body(1)]
    assert await asyncio.wait_for(future, 1) == 1
    assert logs.hand_over() == 0


async def test_a_full_batch_leaves_without_waiting_out_the_linger() -> None:
    delivery = FakeDelivery()
    logs = _lingering(delivery, linger=60, batch_max=3)
    started = time.monotonic()
    futures = [logs.submit(_body(n), idempotency_key=str(n)) for n in range(3)]
    assert await asyncio.wait_for(asyncio.gather(*futures), 2) == [1, 2, 3]
    assert time.monotonic() - started < 1


async def test_watch_calls_back_once_the_log_is_settled() -> None:
    logs = _lingering(FakeDelivery(), linger=0.01)
    seen: list[int | None] = []
    future = logs.submit(_body(1), idempotency_key="a")
    logs.watch(future, lambda settled: seen.append(settled.result()))
    await asyncio.wait_for(future, 2)
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert seen == [1]


class _Failing(FakeDelivery):
    def submit(self, body: dict[str, Any], *, idempotency_key: str) -> asyncio.Future[int | None]:
        future: asyncio.Future[int | None] = asyncio.Future(loop=self.loop)
        future.set_exception(RuntimeError("lost"))
        return future


async def test_a_failed_delivery_yields_none() -> None:
    logs = _lingering(_Failing(), linger=0.01)
    future = logs.submit(_body(1), idempotency_key="a")
    assert await asyncio.wait_for(future, 1) is None


async def test_logs_from_other_threads_keep_their_order() -> None:
    delivery = FakeDelivery()
    logs = _lingering(delivery, linger=0.02)

    def submit_all() -> list[asyncio.Future[int | None]]:
        return [logs.submit(_body(n), idempotency_key=str(n)) for n in range(50)]

    futures = await asyncio.to_thread(submit_all)
    assert await asyncio.wait_for(asyncio.gather(*futures), 2) == list(range(1, 51))
    assert delivery.bodies == [_body(n) for n in range(50)]


async def test_a_closed_delivery_refuses_logs_loudly() -> None:
    logs = _lingering(FakeDelivery(), linger=0.01)
    logs.close()
    with pytest.raises(RuntimeError, match="closed"):
        logs.submit(_body(1), idempotency_key="late")
