"""FreezeHeapAfterStartup: the heap is frozen when start-up completes, requests pass through."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.heap_freeze import YOUNG_THRESHOLD, FreezeHeapAfterStartup


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()  # this test process must not keep its heap frozen, nor its thresholds
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _app(seen: list[int]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        seen.append(gc.get_freeze_count())  # start-up still running: nothing frozen yet
        yield

    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)], lifespan=lifespan)


async def _start(app: FreezeHeapAfterStartup) -> tuple[asyncio.Queue, asyncio.Task]:
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                   inbox.get, outbox.put))
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    return inbox, task


async def test_the_heap_is_frozen_once_start_up_completes() -> None:
    seen: list[int] = []
    app = FreezeHeapAfterStartup(_app(seen))
    inbox, task = await _start(app)
    assert seen == [0]
    assert gc.get_freeze_count() > 1000  # modules, classes, the app: all frozen
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    await inbox.put({"type": "lifespan.shutdown"})
    await task


async def test_requests_pass_through_untouched() -> None:
    app = FreezeHeapAfterStartup(_app([]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (200, "hello")
    assert gc.get_freeze_count() == 0  # no lifespan ran, so nothing was frozen
    assert gc.get_threshold()[0] != YOUNG_THRESHOLD
