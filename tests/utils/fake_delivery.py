"""A recording stand-in for LogDelivery, for unit tests of the tracer."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any

__all__ = ["FakeDelivery"]


class FakeDelivery:
    """Records what the tracer submits; ids count up from 1. `hold` keeps futures pending."""

    def __init__(self, *, hold: bool = False, broken: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.tracked: list[tuple[int, int]] = []
        self.hold, self.broken = hold, broken
        self._ids = itertools.count(1)
        self.loop = asyncio.get_running_loop()

    def submit(self, body: dict[str, Any], *, idempotency_key: str) -> asyncio.Future[int | None]:
        if self.broken:
            raise RuntimeError("delivery exploded")
        self.bodies.append(body)
        self.keys.append(idempotency_key)
        future: asyncio.Future[int | None] = asyncio.Future(loop=self.loop)
        if not self.hold:
            self.loop.call_soon_threadsafe(future.set_result, next(self._ids))
        return future

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        return self.loop.create_task(coro)

    async def create_group(self) -> int:
        return 99

    async def track_group(self, request_id: int, group_id: int) -> bool:
        self.tracked.append((request_id, group_id))
        return True
