"""Freeze the start-up heap once an app has started, so the collector stops rescanning it.

What start-up builds (LangChain, pydantic models, chains, routes: ~250,000 objects) lives as
long as the process, yet every full collection walked all of it again: under load that was
about 40% of the service's CPU, on bare LangServe too (BENCHMARKS.md, "Garbage collection").
`gc.freeze()` after start-up, as CPython's documentation suggests for long-lived processes,
moves those objects out of the collector's generations; objects made later (a request's) are
collected as before. The price: cyclic garbage among the frozen objects is never freed.

The young generation's threshold then goes from 700 to 50,000 allocations. A request makes
no cyclic garbage (checked with DEBUG_SAVEALL under load: none per request, bare or traced),
yet young collections kept scanning the live objects of the requests in flight only to
promote them: with 32 in flight, 700 was passed about twice a request, 10,000 still once
every ~70 traced requests (a ~1.5 ms scan each), costing up to 0.07 ms of CPU per request
(BENCHMARKS.md, "Traced ÷ bare, `/example`"). At 50,000 neither bare LangServe nor the traced
service collected under that load. Cyclic garbage, where some appears (an exception's
traceback), waits for up to 50,000 allocations: about ten megabytes at worst.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["YOUNG_THRESHOLD", "FreezeHeapAfterStartup", "freeze_heap"]

YOUNG_THRESHOLD = 50_000

logger = logging.getLogger(__name__)


def freeze_heap() -> int:
    """Collect what start-up left behind, freeze the rest, collect the young less often.

    Returns the number of objects frozen.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return gc.get_freeze_count()


class FreezeHeapAfterStartup:
    """ASGI wrapper: freezes the heap when the lifespan reports start-up complete."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app` (served by uvicorn with its lifespan)."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything through; act on `lifespan.startup.complete` only."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_after_startup(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                logger.info("start-up heap frozen: %d objects", freeze_heap())
            await send(message)

        await self.app(scope, receive, send_after_startup)
