"""The spool's side of delivery: writes spooled logs to disk and drains them in order.

All file I/O runs on one thread (the spool is not thread-safe, and a single thread keeps the
append order). While anything is spooled the delivery is "backlogged": new logs join the
spool behind the old ones instead of racing them, so PromptLayer receives them batch by batch
in spool order, and a server that is down is probed by one request at a time, not by every
worker. A batch goes in one post to the batch route where the backend has it, else as
concurrent posts (a backlog drains at many logs per round trip either way); within a batch
the order in which they land is not fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from promptserve.tracing._poster import Poster, log_outcome
from promptserve.tracing._spool import Spool, SpoolCounts, SpoolRecord

__all__ = ["SpoolDrain"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

Landed = Callable[[str, dict[str, Any], int], None]


class SpoolDrain:
    """Owns the disk spool: `add` queues a log for it, a task delivers it when it can."""

    def __init__(self, directory: Path, poster: Poster, *, on_landed: Landed,
                 batch: int = 64, probe_max: float = 2.0) -> None:
        """Spool into `directory`; report each delivered log to `on_landed(key, body, id)`."""
        self._directory = directory
        self._poster = poster
        self._on_landed = on_landed
        self._batch = batch
        self._probe_max = probe_max
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._spool: Spool | None = None
        self._writes: list[tuple[str, dict[str, Any]]] = []
        self._writing = 0  # records handed to the spool thread, not yet counted by it
        self._writer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._counts = SpoolCounts(0, 0)
        self.spooled = 0
        self.failing = False  # the last drain round found PromptLayer unavailable
        self.delivered = 0
        self.peak = 0

    async def start(self) -> dict[str, int]:
        """Open the spool (recovering earlier segments), start draining; landed run ids."""
        self._spool = await self._io(Spool, self._directory)
        self._counts = self._spool.counts()
        self.peak = self._counts.pending
        self._task = asyncio.get_running_loop().create_task(self._run())
        return dict(self._spool.landed)

    @property
    def backlogged(self) -> bool:
        """True while logs wait on disk or on their way there."""
        return bool(self._writes) or self._writer is not None or self._counts.pending > 0

    def stats(self) -> dict[str, int]:
        """Spool figures for /metrics."""
        return {
            "spool_pending": self._counts.pending + self._writing + len(self._writes),
            "spool_bytes": self._counts.size,
            "spool_peak": self.peak,
            "spooled_total": self.spooled,
            "spool_delivered_total": self.delivered,
        }

    def add(self, key: str, body: dict[str, Any]) -> None:
        """Queue a log for the spool (written and fsync'd in the next batch)."""
        self._writes.append((key, body))
        self.spooled += 1
        if self._writer is None and self._spool is not None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._writes and self._spool is not None:
                batch, self._writes = self._writes, []
                self._writing = len(batch)
                try:
                    self._counts = await self._io(self._spool.append, batch)
                finally:
                    self._writing = 0
                self.peak = max(self.peak, self._counts.pending)
                self._wake.set()
        except Exception:
            logger.exception("spool: writing failed; %d logs kept in memory", len(self._writes))
        finally:
            self._writer = None

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except RuntimeError:
            # The executor takes no new work: the interpreter is exiting (concurrent.futures
            # shuts executors down before atexit runs), so a script's last logs are spooled
            # in this thread; the loop has nothing else left to do.
            return fn(*args)

    # -- draining --------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self._counts.pending == 0:
                    self._wake.clear()
                    await self._wake.wait()
                healed = await self._drain_once(probe=failures > 0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("spool: drain round failed")
                healed = False
            self.failing = not healed
            if healed:
                failures = 0
                continue
            failures += 1
            assert self._spool is not None
            await self._io(self._spool.rewind)
            await asyncio.sleep(min(self._probe_max, self._poster.backoff(failures)))

    async def _drain_once(self, *, probe: bool) -> bool:
        """Deliver the next batch; False when PromptLayer failed in a way that may heal."""
        assert self._spool is not None
        records = await self._io(self._spool.next_batch, 1 if probe else self._batch)
        if not records:
            self._counts = await self._io(self._spool.counts)
            # Records left but none found past the cursor: start over after a pause.
            return self._counts.pending == 0
        results = await self._post_all(records)
        done = [(r, rid) for r, (rid, transient) in zip(records, results, strict=True)
                if not transient]
        landed = []
        for record, request_id in done:
            if request_id is not None:
                self.delivered += 1
                root = str(record.body.get("metadata", {}).get("_langchain_root_run_id", ""))
                if root:
                    landed.append((root, request_id))
                self._on_landed(record.key, record.body, request_id)
        self._counts = await self._io(self._spool.ack, done, landed)
        return len(done) == len(records)

    async def _post_all(self, records: list[SpoolRecord]) -> list[tuple[int | None, bool]]:
        """(request id or None, whether the failure may heal) per record."""
        if len(records) > 1 and self._poster.batch_route:
            batch = await self._poster.post_log_batch(
                [(r.key, r.body) for r in records],
                # One whole attempt, as for `_post` below.
                budget=self._poster.attempt_timeout, retry=False,
            )
            if batch.answers is not None:
                return [_outcome(record.key, status, answer, transient=False)
                        for record, (status, answer) in zip(records, batch.answers, strict=True)]
            if batch.transient:
                return [(None, True)] * len(records)
        return list(await asyncio.gather(*(self._post(r) for r in records)))

    async def _post(self, record: SpoolRecord) -> tuple[int | None, bool]:
        result = await self._poster.post(
            "/log-request", record.body, headers={"Idempotency-Key": record.key},
            what=f"spooled log {record.key}",
            # One whole attempt: a budget of 0 would cut each phase at 50 ms, and a backend busy
            # with the backlog would then "fail" every post of the batch, again and again. No
            # retries: the drain backs off and probes with one record, keeping the spool order.
            budget=self._poster.attempt_timeout, retry=False,
        )
        return _outcome(record.key, result.status, result.body, transient=result.transient)

    async def close(self) -> None:
        """Stop draining and write what is queued for the spool (fsync'd) before returning."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._writes and self._spool is not None:
            batch, self._writes = self._writes, []
            self._counts = await self._io(self._spool.append, batch)
        self._spool = None
        self._thread.shutdown(wait=True)


def _outcome(
    key: str, status: int | None, answer: Any, *, transient: bool
) -> tuple[int | None, bool]:
    """(request id or None, whether it may heal) of one spooled log's answer."""
    request_id, may_heal = log_outcome(status, answer, transient=transient)
    if request_id is None and not may_heal:
        logger.warning("spooled log %s not stored by PromptLayer (HTTP %s)", key, status)
    return request_id, may_heal
