"""A script's logs leave together: each waits up to `linger` seconds for those that follow.

A script calls its model in a loop, and the delivery loop's thread shares the GIL with it:
each time that loop wakes (to queue a log, to post it, to read the answer) the script's
thread waits for it. Posted one by one, a log cost the delivery thread 0.41 M instructions
(5.5% of a call to a local fake model that answers in 1.6 ms) and the call 0.67 ms in all
(BENCHMARKS.md, "The handler in a script"); gathered, 0.10 M. Here a callback only appends
its log to a list. The first log after a quiet spell wakes the loop; from then on the loop
ticks every `linger` s and hands whatever was gathered meanwhile to `LogDelivery` at once,
so consecutive calls share one batch post (`/log-request/batch` where the backend has it)
and the script's thread wakes nothing; a tick that finds nothing stops the ticking.

Nothing waits longer than `linger` for it: `flush`, the exit flush and a wait for one log's
id (`return_pl_id`) hand the gathered logs over first, and an id callback fires at most
`linger` s later than it would have.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from promptserve.tracing import LogDelivery
from promptserve.tracing._types import LogBody

__all__ = ["LINGER_SECONDS", "LingeringDelivery"]

T = TypeVar("T")

# Long enough to gather dozens of calls to a fast local model; short beside any wait for an
# id, which does not wait it out anyway.
LINGER_SECONDS = 0.1

Settled = Callable[["asyncio.Future[int | None]"], Any]


@dataclass(slots=True)
class _Log:
    body: LogBody
    key: str
    future: asyncio.Future[int | None]


@dataclass(slots=True)
class _Watch:
    future: asyncio.Future[int | None]
    fn: Settled


class LingeringDelivery:
    """What the tracer needs of a `LogDelivery` (submit, spawn, groups), each log gathered
    for up to `linger` s (or until `batch_max` wait) before it goes to `delivery`."""

    def __init__(self, delivery: LogDelivery, loop: asyncio.AbstractEventLoop, *,
                 linger: float = LINGER_SECONDS, batch_max: int = 100) -> None:
        """Gather logs for `delivery`, which runs on `loop` (another thread's)."""
        self.delivery = delivery
        self.linger = linger
        self._loop = loop
        self._batch_max = max(1, batch_max)
        self._lock = threading.Lock()
        self._gathered: list[_Log | _Watch] = []
        self._ticking = False  # a tick is due (or its first is being scheduled)
        self._tick: asyncio.TimerHandle | None = None
        self._closed = False
        self.hand_overs = 0

    # -- from any thread ---------------------------------------------------------------------

    def submit(self, body: LogBody, *, idempotency_key: str) -> asyncio.Future[int | None]:
        """Gather one /log-request body; the future (on the delivery loop) yields its id or
        None, as `LogDelivery.submit`'s does."""
        future: asyncio.Future[int | None] = asyncio.Future(loop=self._loop)
        self._gather(_Log(body, idempotency_key, future))
        return future

    def watch(self, future: asyncio.Future[int | None], fn: Settled) -> None:
        """Call `fn(future)` on the delivery loop once `future` (from `submit`) is settled."""
        self._gather(_Watch(future, fn))

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """`LogDelivery.spawn` (a group's task waits for its logs' futures)."""
        return self.delivery.spawn(coro)

    def close(self) -> None:
        """Take no more logs (the delivery is closing): a late one raises, so its callback
        says so, instead of waiting for a hand-over that never comes."""
        with self._lock:
            self._closed = True

    def _gather(self, entry: _Log | _Watch) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("promptserve's log delivery is closed (interpreter exit)")
            self._gathered.append(entry)
            start = not self._ticking
            self._ticking = True
            full = len(self._gathered) == self._batch_max
        if start:
            self._loop.call_soon_threadsafe(self._start)
        elif full:
            self._loop.call_soon_threadsafe(self.hand_over)

    # -- on the delivery loop ------------------------------------------------------------------

    def _start(self) -> None:
        if self._tick is None:
            self._tick = self._loop.call_later(self.linger, self._ticked)

    def _ticked(self) -> None:
        self._tick = None
        if self.hand_over():
            self._tick = self._loop.call_later(self.linger, self._ticked)
            return
        with self._lock:
            if self._gathered:  # came in since: tick once more
                self._tick = self._loop.call_later(self.linger, self._ticked)
            else:
                self._ticking = False

    def hand_over(self) -> int:
        """Give every gathered log to the delivery now (on the delivery loop); how many."""
        with self._lock:
            entries, self._gathered = self._gathered, []
        if entries:
            self.hand_overs += 1
        for entry in entries:
            if isinstance(entry, _Log):
                # On the delivery loop `submit` queues at once: the batch forms in its queue.
                landed = self.delivery.submit(entry.body, idempotency_key=entry.key)
                landed.add_done_callback(functools.partial(_copy, target=entry.future))
            else:
                entry.future.add_done_callback(entry.fn)
        return len(entries)

    async def create_group(self) -> int:
        """`LogDelivery.create_group`."""
        return await self.delivery.create_group()

    async def track_group(self, request_id: int, group_id: int) -> bool:
        """`LogDelivery.track_group`."""
        return await self.delivery.track_group(request_id, group_id)


def _copy(source: asyncio.Future[int | None], *, target: asyncio.Future[int | None]) -> None:
    if target.done():
        return
    if source.cancelled() or source.exception() is not None:
        target.set_result(None)
    else:
        target.set_result(source.result())
