"""The single writer thread: group commit, optimistic first.

Every write of the process goes through one thread fed by a queue (as datasette does).
The thread takes whatever is queued and runs the calls in one transaction, committed once,
so a burst of /log-request calls costs one fsync and no per-call SAVEPOINT round trips.
If any call raises (an unknown request id, say) or the COMMIT fails, the transaction is
rolled back and each call is run again in a transaction of its own, so one failing call
never undoes or blocks the others and every call stays atomic. Calls are pure database
functions, so running one again after a rollback is safe. Results reach the event loop only
after the commit, so an answer always describes durable data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

__all__ = ["WriterThread"]

logger = logging.getLogger(__name__)

_MAX_BATCH = 512


@dataclass(slots=True)
class _Job:
    fn: Callable[[sa.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None


def _settle_all(jobs: list[_Job]) -> None:
    for job in jobs:
        _settle(job)


def _settle(job: _Job) -> None:
    if job.future.cancelled():
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.result)


class WriterThread:
    """Owns one connection and applies queued write calls in batched transactions."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="backend-writer", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def submit(self, fn: Callable[[sa.Connection], Any]) -> asyncio.Future[Any]:
        """Queue `fn(connection)`; the future resolves after its transaction commits."""
        loop = asyncio.get_running_loop()
        job = _Job(fn=fn, future=loop.create_future(), loop=loop)
        self._queue.put(job)
        return job.future

    def _take_batch(self) -> tuple[list[_Job], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch, stopping = [first], False
        while len(batch) < _MAX_BATCH:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stopping = True
                break
            batch.append(job)
        return batch, stopping

    def _run(self) -> None:
        options = {"sqlite_begin": "BEGIN IMMEDIATE"}
        with self._engine.connect().execution_options(**options) as connection:
            stopping = False
            while not stopping:
                batch, stopping = self._take_batch()
                if batch:
                    self._apply(connection, batch)

    def _apply(self, connection: sa.Connection, batch: list[_Job]) -> None:
        if not self._commit(connection, batch) and len(batch) > 1:
            # Something failed and the whole batch rolled back: run each call alone, so
            # one bad call cannot sink the others.
            for job in batch:
                job.result, job.error = None, None
                self._commit(connection, [job])
        # One wake-up per event loop for the whole batch, not one per call: every
        # call_soon_threadsafe writes to the loop's self-pipe.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            # A closed loop raises RuntimeError: nobody waits for those answers any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, jobs)

    @staticmethod
    def _commit(connection: sa.Connection, batch: list[_Job]) -> bool:
        """Run `batch` in one transaction; False (rolled back, errors set) if anything failed."""
        failed: BaseException | None = None
        try:
            with connection.begin():
                for job in batch:
                    try:
                        job.result = job.fn(connection)
                    except Exception as exc:
                        job.error = failed = exc
                        raise
        except Exception as exc:
            if failed is None:  # BEGIN or COMMIT failed: nothing of the batch landed
                logger.exception("backend write transaction failed")
                for job in batch:
                    job.error = exc
            return False
        return True
