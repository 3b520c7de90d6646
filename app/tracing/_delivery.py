"""Delivery of request logs and groups to PromptLayer over one pooled HTTP client.

`submit` only schedules work and returns a future, so LangChain callbacks never wait on I/O.
Each log becomes a `_LogItem` handed to `_enqueue`; today that starts a task per item, and a
bounded queue with a disk spool can later replace `_enqueue` without the callers noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from app.observability import metrics
from app.tracing._types import LogBody

__all__ = ["DeliveryError", "LogDelivery"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Statuses worth another attempt: the server may recover; every other 4xx never will.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_MAX_RETRY_AFTER = 30.0


class DeliveryError(Exception):
    """A PromptLayer call failed for good (non-retryable answer or budget spent)."""


@dataclass(slots=True)
class _LogItem:
    """One log waiting for delivery; `future` resolves to the request id or None."""

    body: LogBody
    idempotency_key: str
    future: asyncio.Future[int | None]


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
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._budget = total_budget
        self._attempt_timeout = attempt_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        # Keep-alive pool sized above the 32+ concurrent requests we serve, so a burst of
        # logs reuses warm connections instead of paying a TCP handshake each.
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections, keepalive_expiry=30.0)
        self._client = httpx.AsyncClient(
            limits=limits, timeout=attempt_timeout, transport=transport,
            headers={"X-API-KEY": api_key, "Content-Type": "application/json"},
        )
        self._inflight: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    # -- scheduling ------------------------------------------------------------------------

    def submit(self, body: LogBody, *, idempotency_key: str) -> asyncio.Future[int | None]:
        """Schedule delivery of one /log-request body; the future yields its id or None."""
        loop = self._owner_loop()
        future: asyncio.Future[int | None] = asyncio.Future(loop=loop)
        item = _LogItem(body=body, idempotency_key=idempotency_key, future=future)
        self._call_in_loop(loop, self._enqueue, item)
        return future

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
        """Start delivering `item` (the seam for a bounded queue + disk spool)."""
        if self._closed:
            logger.warning("log %s dropped: delivery is closed", item.idempotency_key)
            item.future.set_result(None)
            return
        task = asyncio.get_running_loop().create_task(self._deliver(item))
        self._track(task)
        metrics.log_pending(+1)

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # -- HTTP ------------------------------------------------------------------------------

    async def _deliver(self, item: _LogItem) -> None:
        request_id: int | None = None
        try:
            response = await self._post(
                "/log-request", item.body, headers={"Idempotency-Key": item.idempotency_key},
                what=f"log {item.idempotency_key}",
            )
            if response is not None:
                request_id = int(response.json()["id"])
        except Exception:
            logger.exception("log %s: unexpected delivery failure", item.idempotency_key)
        finally:
            metrics.log_pending(-1)
            (metrics.log_delivered if request_id is not None else metrics.log_failed)()
            if not item.future.done():
                item.future.set_result(request_id)

    async def _post(
        self, path: str, body: Mapping[str, Any], *, headers: Mapping[str, str], what: str
    ) -> httpx.Response | None:
        """POST with retries on transport errors, timeouts, 429 and 5xx; None on failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budget
        # Serialise once (here, off the callback path); `default=str` keeps odd values loggable.
        content = json.dumps(body, default=str).encode()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            retry_after: float | None = None
            try:
                response = await self._client.post(
                    self._base_url + path, content=content, headers=headers,
                    timeout=max(0.05, min(self._attempt_timeout, remaining)),
                )
            except httpx.TransportError as exc:  # connection errors and timeouts
                reason = f"{type(exc).__name__}"
            else:
                if response.is_success:
                    return response
                if response.status_code not in _RETRY_STATUSES:
                    logger.warning("%s: PromptLayer answered %s, not retrying: %s",
                                   what, response.status_code, response.text[:200])
                    return None
                reason = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            delay = self._backoff(attempt, retry_after)
            if loop.time() + delay >= deadline:
                logger.warning("%s: giving up after %d attempts (%s)", what, attempt, reason)
                return None
            logger.info("%s: attempt %d failed (%s), retrying in %.2fs", what, attempt,
                        reason, delay)
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap: float = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        # "Equal jitter": grows exponentially, yet spreads replicas that failed together.
        delay = cap / 2 + random.uniform(0, cap / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    async def create_group(self) -> int:
        """Create a PromptLayer group and return its id (raises DeliveryError)."""
        self._owner_loop()
        response = await self._post("/create-group", {"api_key": self._api_key}, headers={},
                                    what="create-group")
        if response is None:
            raise DeliveryError("could not create a PromptLayer group")
        return int(response.json()["id"])

    async def track_group(self, request_id: int, group_id: int) -> bool:
        """Add request `request_id` to group `group_id`; False if that failed."""
        self._owner_loop()
        body = {"api_key": self._api_key, "request_id": request_id, "group_id": group_id}
        response = await self._post("/track-group", body, headers={},
                                    what=f"track-group {request_id}→{group_id}")
        return response is not None

    # -- shutdown --------------------------------------------------------------------------

    async def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for everything in flight; True if all finished."""
        pending = set(self._inflight)
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop accepting work, await in-flight deliveries (bounded), close the client."""
        self._closed = True
        try:
            if not await self.flush(timeout):
                leftover = [t for t in self._inflight if not t.done()]
                logger.warning("closing with %d deliveries unfinished", len(leftover))
                for task in leftover:
                    task.cancel()
                await asyncio.gather(*leftover, return_exceptions=True)
        finally:
            await self._client.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), _MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own back-off


def _copy_outcome(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())
