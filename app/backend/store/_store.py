"""The store: one writer thread for every write, a small thread pool for reads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import sqlalchemy as sa

from app.backend.store._links import PromptLinks
from app.backend.store._writer import WriterThread
from app.backend.store.engine import make_engine, migrate

__all__ = ["Store", "open_store"]

T = TypeVar("T")


class Store:
    """Database access for the event loop: DB work never runs on the loop's thread."""

    def __init__(self, engine: sa.Engine, *, readers: int = 4) -> None:
        self.engine = engine
        self._writer = WriterThread(engine)
        self.prompt_links = PromptLinks()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="backend-read")
        self._writer.start()

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run `fn(connection)` atomically on the writer thread; return after commit."""
        result: T = await self._writer.submit(fn)
        return result

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run `fn(connection)` in a read transaction on the reader pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    def read_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run `fn(connection)` on the calling thread (for tests and tools, not the loop)."""
        with self.engine.connect() as connection:
            return fn(connection)

    def close(self) -> None:
        """Drain the write queue, stop the threads and release connections."""
        self._writer.stop()
        self._readers.shutdown(wait=True)
        self.engine.dispose()


def open_store(url: str) -> Store:
    """Open (and migrate) the database at `url`; blocking, so call it off the event loop."""
    engine = make_engine(url)
    migrate(engine)
    return Store(engine)
