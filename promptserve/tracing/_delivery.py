"""Delivery of request logs and groups to PromptLayer over one pooled HTTP client.

`submit` only schedules work and returns a future, so LangChain callbacks never wait on I/O.
Each log becomes a `_LogItem` in a bounded queue served by a fixed set of worker tasks.
Batching: while at most `batch_posts` posts are in flight, the logs that queue up meanwhile
go together in the next one, to `/log-request/batch` (our backend's extension: one HTTP
exchange instead of one per log, BENCHMARKS.md, "Traced ÷ bare, `/example`"). A log alone goes to
`/log-request` as before, so a quiet service sends exactly what the SDK sends. A backend
without the batch route (404/405, hosted PromptLayer) turns batching off for good; a batch
too large for the backend's body limit (413) halves the batches that follow.
Without a spool a worker retries a log for `total_budget` seconds. With a spool (the service
always has one) a log not delivered within `wait_budget` seconds (the time a response waits
for its id), or one that finds the queue full, goes to the disk spool, whose drain delivers it
in order once PromptLayer answers again. Idempotency keys (LLM run ids) travel with every
attempt, so a retry or a re-delivery after a crash never stores a log twice in a backend that
honours them (ours). The hosted PromptLayer ignores them: `start` asks which kind this is,
and where keys are ignored a log whose answer timed out is not resent but set aside
(promptserve.tracing._poster says how).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from promptserve.tracing._drain import SpoolDrain
from promptserve.tracing._poster import (
    RETRY_STATUSES,
    UNCERTAIN,
    UNCERTAIN_FILE,
    LocalHandler,
    Poster,
    log_outcome,
)
from promptserve.tracing._types import LogBody

__all__ = ["DeliveryError", "DeliveryMetrics", "LogDelivery"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Root run id -> request id of its last delivered call, for feedback given by run id. Logs
# the spool delivered (their responses said null) are kept longest; every other landing only
# in a small recent window, so steady traffic does not grow memory.
_LATE_RUNS_KEPT = 100_000
_RECENT_RUNS_KEPT = 10_000

Listener = Callable[[str, int], None]


class DeliveryMetrics(Protocol):
    """Where delivery counts its logs (the service's Prometheus metrics; none by default)."""

    def log_pending(self, delta: int) -> None:
        """Logs waiting for delivery went up or down by `delta`."""

    def log_delivered(self) -> None:
        """One log reached PromptLayer."""

    def log_failed(self, reason: str) -> None:
        """One log was given up on, for `reason`: `dropped` (no spool, queue full or
        shutdown), `rejected_<status>` (PromptLayer refused it for its content) or
        `uncertain` (unanswered by a backend that ignores Idempotency-Key: not resent)."""


class _NoMetrics:
    def log_pending(self, delta: int) -> None:
        return None

    def log_delivered(self) -> None:
        return None

    def log_failed(self, reason: str) -> None:
        return None


class DeliveryError(Exception):
    """A PromptLayer call failed for good (non-retryable answer or budget spent)."""


@dataclass(slots=True, eq=False)  # hashed by identity: kept in a set while in flight
class _LogItem:
    """One log waiting for delivery; `future` resolves to the request id or None."""

    body: LogBody
    idempotency_key: str
    future: asyncio.Future[int | None]
    enqueued: float = field(default=0.0)
    spooled: bool = False


class LogDelivery:
    """Posts logs, groups and group tracks to PromptLayer with retries; one per process."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        total_budget: float = 30.0,
        attempt_timeout: float = 5.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        max_connections: int | None = None,
        spool_dir: Path | None = None,
        wait_budget: float = 2.0,
        queue_size: int = 10_000,
        workers: int = 64,
        batch_max: int = 100,
        batch_posts: int = 4,
        local: Mapping[str, LocalHandler] | None = None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self._api_key = api_key
        self._metrics: DeliveryMetrics = metrics if metrics is not None else _NoMetrics()
        self._budget = total_budget
        self._poster = Poster(
            base_url=base_url,
            api_key=api_key,
            attempt_timeout=attempt_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            # Enough connections for every worker plus the spool drain's or a group call's.
            max_connections=max_connections if max_connections is not None else workers + 8,
            local=local,
            uncertain_file=spool_dir / UNCERTAIN_FILE if spool_dir is not None else None,
        )
        self._drain = (
            SpoolDrain(
                spool_dir,
                self._poster,
                on_landed=self._landed_late,
                probe_max=min(2.0, backoff_max),
            )
            if spool_dir is not None
            else None
        )
        self._wait_budget = wait_budget
        self._queue: asyncio.Queue[_LogItem] | None = None
        self._queue_size = queue_size
        self._worker_count = workers
        self._batch_max = max(1, batch_max)
        self._batch_posts = max(1, batch_posts)
        self._gate: asyncio.Semaphore | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._current: set[_LogItem] = set()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._late_runs: OrderedDict[str, int] = OrderedDict()
        self._recent_runs: OrderedDict[str, int] = OrderedDict()
        # Futures of spooled logs whose response still waits (removed at its deadline).
        self._waiting: dict[str, asyncio.Future[int | None]] = {}
        self._listeners: list[Listener] = []
        self._closed = False
        self._counters = {"delivered_total": 0, "rejected_total": 0, "dropped_total": 0,
                          "log_posts_total": 0, "batched_logs_total": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    async def start(self) -> None:
        """Open the spool (delivering what earlier processes left there); ask, in the
        background, whether the backend honours Idempotency-Key (Poster.learn_keys)."""
        self._track(self._owner_loop().create_task(self._poster.learn_keys()))
        if self._drain is not None:
            for run_id, request_id in (await self._drain.start()).items():
                _remember(self._late_runs, run_id, request_id, _LATE_RUNS_KEPT)

    # -- scheduling ------------------------------------------------------------------------

    def submit(self, body: LogBody, *, idempotency_key: str) -> asyncio.Future[int | None]:
        """Schedule delivery of one /log-request body; the future yields its id or None."""
        loop = self._owner_loop()
        future: asyncio.Future[int | None] = asyncio.Future(loop=loop)
        item = _LogItem(body=body, idempotency_key=idempotency_key, future=future)
        self._metrics.log_pending(+1)
        self._call_in_loop(loop, self._enqueue, item)
        return future

    def _count(self, outcome: str, *, pending: bool = True, reason: str = "dropped") -> None:
        """One log settled for good: delivered, rejected by PromptLayer, or dropped;
        `pending=False` for a spooled log (no longer counted as pending)."""
        self._counters[outcome] += 1
        if pending:
            self._metrics.log_pending(-1)
        if outcome == "delivered_total":
            self._metrics.log_delivered()
        else:
            self._metrics.log_failed(reason)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `coro` as a tracked background task on the delivery loop (thread-safe)."""
        loop = self._owner_loop()
        future: asyncio.Future[T] = asyncio.Future(loop=loop)

        def start() -> None:
            task = loop.create_task(coro)
            self._track(task)
            task.add_done_callback(lambda t: _copy_outcome(t, future))

        self._call_in_loop(loop, start)
        return future

    def _owner_loop(self) -> asyncio.AbstractEventLoop:
        # Futures live on the loop that serves requests. An async handler driven from sync
        # LangChain code runs on a throwaway loop in another thread; work must not go there.
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
        return self._loop

    @staticmethod
    def _call_in_loop(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _enqueue(self, item: _LogItem) -> None:
        """Queue `item` for a worker, or hand it to the spool when that keeps order."""
        if self._closed:
            self._give_up(item, "delivery is closed")
            return
        item.enqueued = asyncio.get_running_loop().time()
        if self._drain is not None and self._drain.backlogged:
            self._spool(item)  # behind older spooled logs, to keep PromptLayer's order
            return
        queue = self._ensure_workers()
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self._give_up(item, "delivery queue is full")

    def _ensure_workers(self) -> asyncio.Queue[_LogItem]:
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
            self._gate = asyncio.Semaphore(self._batch_posts)
            loop = asyncio.get_running_loop()
            self._workers = [
                loop.create_task(self._work(self._queue)) for _ in range(self._worker_count)
            ]
        return self._queue

    def _spool(self, item: _LogItem) -> None:
        assert self._drain is not None
        # On disk it counts as spool_pending, whichever process drains it: a restarted
        # service delivering an earlier process's log must not take it off logs_pending.
        # Once only, and not if it landed already (a shutdown spools what may have).
        if not item.spooled and not item.future.done():
            self._metrics.log_pending(-1)
        item.spooled = True
        self._drain.add(item.idempotency_key, item.body)
        loop = asyncio.get_running_loop()
        remaining = item.enqueued + self._wait_budget - loop.time()
        if remaining <= 0 or self._closed or self._drain.failing:
            _settle(item.future, None)  # PromptLayer is down: answer now, not in 2 s
            return
        # The drain may still deliver it within the response's budget (a short backlog).
        self._waiting[item.idempotency_key] = item.future
        loop.call_later(remaining, self._expire, item.idempotency_key)

    def _expire(self, key: str) -> None:
        future = self._waiting.pop(key, None)
        if future is not None:
            _settle(future, None)

    def _give_up(self, item: _LogItem, why: str) -> None:
        """Spool `item` if there is a spool; otherwise drop it, loudly."""
        if self._drain is not None and not self._closed:
            self._spool(item)
            return
        self._count("dropped_total")
        logger.warning("log %s dropped: %s", item.idempotency_key, why)
        _settle(item.future, None)

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # -- workers ---------------------------------------------------------------------------

    async def _work(self, queue: asyncio.Queue[_LogItem]) -> None:
        while True:
            if self._batching():
                assert self._gate is not None
                # Workers wait here, not on the queue, so logs queue up behind the posts
                # in flight and leave together in the next batch.
                async with self._gate:
                    await self._serve(await self._take(queue), queue)
            else:
                await self._serve([await queue.get()], queue)

    async def _take(self, queue: asyncio.Queue[_LogItem]) -> list[_LogItem]:
        items = [await queue.get()]
        while len(items) < self._batch_max and not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def _serve(self, items: list[_LogItem], queue: asyncio.Queue[_LogItem]) -> None:
        self._current.update(items)
        try:
            await self._deliver(items)
        except Exception:
            logger.exception("%d logs: unexpected delivery failure", len(items))
            for item in items:
                _settle(item.future, None)
        finally:
            for item in items:
                self._current.discard(item)
                queue.task_done()

    async def _deliver(self, items: list[_LogItem]) -> None:
        now = asyncio.get_running_loop().time()
        budget = self._wait_budget if self._drain is not None else self._budget
        ready = []
        for item in items:
            remaining = item.enqueued + budget - now
            if self._drain is not None and (remaining <= 0 or self._drain.backlogged):
                self._spool(item)  # waited its budget in the queue, or others are spooled
            else:
                ready.append(item)
        if not ready:
            return
        # The oldest log's budget bounds the post that carries it.
        remaining = max(min(i.enqueued for i in ready) + budget - now, 0.0)
        if len(ready) > 1 and self._batching():
            ready = await self._post_batch(ready, remaining)
        await asyncio.gather(*(self._post_one(item, remaining) for item in ready))

    async def _post_one(self, item: _LogItem, budget: float) -> None:
        self._counters["log_posts_total"] += 1
        result = await self._poster.post(
            "/log-request",
            item.body,
            headers={"Idempotency-Key": item.idempotency_key},
            what=f"log {item.idempotency_key}",
            budget=budget,
        )
        self._settle_log(item, result.status, result.body, transient=result.transient)

    def _batching(self) -> bool:
        return self._batch_max > 1 and self._poster.batch_route

    async def _post_batch(self, items: list[_LogItem], budget: float) -> list[_LogItem]:
        """Post `items` as one batch and settle what it answered; returns the logs to post
        one by one: all of them if the batch was refused as a whole (their own answers say
        what is wrong), else those whose own answer was a 429 or 5xx (retried on their own)."""
        self._counters["log_posts_total"] += 1
        batch = await self._poster.post_log_batch(
            [(i.idempotency_key, i.body) for i in items], budget=budget)
        if batch.answers is None:
            if batch.status == 413 and self._batch_max > 1:
                # Too large for the backend's body limit: smaller batches from now on.
                self._batch_max = max(1, len(items) // 2)
                logger.info("batch of %d logs refused as too large; at most %d from now on",
                            len(items), self._batch_max)
            if not batch.transient:
                return items
            for item in items:
                self._give_up(item, "PromptLayer did not answer within the retry budget")
            return []
        self._counters["batched_logs_total"] += len(items)
        again = []
        for item, (status, answer) in zip(items, batch.answers, strict=True):
            if status in RETRY_STATUSES:
                again.append(item)
            else:
                self._settle_log(item, status, answer, transient=False)
        return again

    def _settle_log(
        self, item: _LogItem, status: int | None, answer: Any, *, transient: bool
    ) -> None:
        """Settle one log from its own answer: landed, spooled for later, or rejected."""
        request_id, may_heal = log_outcome(status, answer, transient=transient)
        if request_id is not None:
            self._landed(item.idempotency_key, item.body, request_id)
            _settle(item.future, request_id)
        elif answer is UNCERTAIN:  # set aside and counted by the poster: not resent
            self._metrics.log_pending(-1)
            self._metrics.log_failed("uncertain")
            _settle(item.future, None)
        elif may_heal:
            self._give_up(item, "PromptLayer did not answer within the retry budget")
        else:
            # Only a log no store can hold gets here (the backend stores what it can of the
            # rest): its reason goes to the log (the poster's line for a log posted alone)
            # and, by status, to the metrics.
            if isinstance(answer, dict) and "message" in answer:
                logger.warning("log %s refused by PromptLayer (HTTP %s): %s",
                               item.idempotency_key, status, str(answer["message"])[:200])
            self._count("rejected_total", reason=f"rejected_{status}")
            _settle(item.future, None)

    # -- landings, and the run-id lookup feedback uses -------------------------------------

    def _landed_late(self, key: str, body: Mapping[str, Any], request_id: int) -> None:
        self._landed(key, body, request_id, late=True)

    def _landed(
        self, key: str, body: Mapping[str, Any], request_id: int, *, late: bool = False
    ) -> None:
        self._count("delivered_total", pending=not late)
        if (waiting := self._waiting.pop(key, None)) is not None:
            _settle(waiting, request_id)
        metadata = body.get("metadata")
        root = metadata.get("_langchain_root_run_id") if isinstance(metadata, dict) else None
        if not isinstance(root, str):
            return
        if late:
            _remember(self._late_runs, root, request_id, _LATE_RUNS_KEPT)
        else:
            _remember(self._recent_runs, root, request_id, _RECENT_RUNS_KEPT)
        for listener in list(self._listeners):
            try:
                listener(root, request_id)
            except Exception:
                logger.exception("delivery listener failed for run %s", root)

    def request_id_for_run(self, run_id: str) -> int | None:
        """The request id of root run `run_id`'s last delivered LLM call, if known here."""
        found = self._recent_runs.get(run_id)
        return found if found is not None else self._late_runs.get(run_id)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(root_run_id, request_id)` on the loop whenever a log lands."""
        self._listeners.append(listener)

    def stats(self) -> dict[str, int]:
        """Queue, spool and failure figures for /metrics."""
        figures = {
            "queue_depth": self._queue.qsize() if self._queue is not None else 0,
            "in_flight": len(self._current),
            **self._counters,
            "failed_attempts_total": self._poster.failed_attempts,
            "uncertain_total": self._poster.uncertain,
        }
        if self._drain is not None:
            drained = self._drain.stats()
            figures.update(drained)
        return figures

    # -- groups ----------------------------------------------------------------------------

    async def create_group(self) -> int:
        """Create a PromptLayer group and return its id (raises DeliveryError)."""
        self._owner_loop()
        result = await self._poster.post(
            "/create-group",
            {"api_key": self._api_key},
            headers={},
            what="create-group",
            budget=self._budget,
        )
        if not result.ok:
            raise DeliveryError("could not create a PromptLayer group")
        return int(result.body["id"])

    async def track_group(self, request_id: int, group_id: int) -> bool:
        """Add request `request_id` to group `group_id`; False if that failed."""
        self._owner_loop()
        body = {"api_key": self._api_key, "request_id": request_id, "group_id": group_id}
        result = await self._poster.post(
            "/track-group",
            body,
            headers={},
            what=f"track-group {request_id}→{group_id}",
            budget=self._budget,
        )
        return result.ok

    # -- shutdown --------------------------------------------------------------------------

    async def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for queued logs and background tasks; True if all done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except TimeoutError:
                return False
        pending = set(self._inflight)
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        return not still

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop accepting work, finish in-flight deliveries (bounded), spool the rest, close."""
        try:
            if not await self.flush(timeout):
                logger.warning(
                    "closing with %d logs and %d tasks unfinished",
                    len(self._current) + self._queue_depth(),
                    len(self._inflight),
                )
            self._closed = True
            leftovers = list(self._current)
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            while self._queue is not None and not self._queue.empty():
                leftovers.append(self._queue.get_nowait())
            for item in leftovers:
                if self._drain is not None:
                    self._spool(item)  # may have landed already: the key dedupes it
                else:
                    self._count("dropped_total")
                    _settle(item.future, None)
            for task in [t for t in self._inflight if not t.done()]:
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            for key in list(self._waiting):
                self._expire(key)
            if self._drain is not None:
                await self._drain.close()
        finally:
            self._closed = True
            await self._poster.aclose()

    def _queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0


def _remember(runs: OrderedDict[str, int], run_id: str, request_id: int, keep: int) -> None:
    runs[run_id] = request_id
    runs.move_to_end(run_id)
    if len(runs) > keep:
        runs.popitem(last=False)


def _settle(future: asyncio.Future[int | None], value: int | None) -> None:
    if not future.done():
        future.set_result(value)


def _copy_outcome(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())
