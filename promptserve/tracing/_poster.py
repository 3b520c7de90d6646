"""POSTs to PromptLayer over one keep-alive pool (tracing._http), retrying what may heal."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from promptserve import json_codec
from promptserve.tracing._http import HttpPool, TransportError

__all__ = [
    "BATCH_PATH",
    "RETRY_STATUSES",
    "BatchAnswers",
    "LocalHandler",
    "PostResult",
    "Poster",
    "log_outcome",
]

logger = logging.getLogger(__name__)

# Statuses worth another attempt: the server may recover; every other 4xx never will.
RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_MAX_RETRY_AFTER = 30.0

# Our backend's extension: many /log-request bodies in one post (app.backend.api.requests).
BATCH_PATH = "/log-request/batch"
# Answers to a batch meaning "no such route here" (hosted PromptLayer): never try again.
_NO_BATCH_ROUTE = frozenset({404, 405})


@dataclass(frozen=True, slots=True)
class PostResult:
    """The outcome of one `post`: the 2xx answer's status and parsed JSON body, or no
    success (`status` None if nothing answered) with whether the last failure may heal."""

    status: int | None = None
    body: Any = None
    transient: bool = False

    @property
    def ok(self) -> bool:
        """Whether PromptLayer accepted the call (2xx); `body` is then its JSON."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class BatchAnswers:
    """The outcome of `post_log_batch`: one (status, body) per log, as /log-request would
    have answered it; or none, because nothing answered in time (`transient`) or the batch
    was refused as a whole (then each log must go on its own)."""

    answers: list[tuple[int | None, Any]] | None = None
    transient: bool = False
    status: int | None = None  # of a batch refused as a whole


# An endpoint served inside this process (the embedded backend): same body, no HTTP.
LocalHandler = Callable[[Mapping[str, Any], Mapping[str, str]], Awaitable[PostResult]]


class Poster:
    """One keep-alive pool to PromptLayer; `post` retries within a time budget.

    The pool binds to the event loop it is created in, so it is created on the first `post`
    (always on the owner loop), not in the constructor, which may run outside any loop.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        attempt_timeout: float,
        backoff_initial: float,
        backoff_max: float,
        max_connections: int,
        local: Mapping[str, LocalHandler] | None = None,
    ) -> None:
        """A client sending `api_key` in X-API-KEY to `base_url`; paths in `local` are
        answered by their in-process handler instead (no retries: nothing to heal)."""
        self._base_url = base_url.rstrip("/")
        self._attempt_timeout = attempt_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_connections = max_connections
        self._headers = {"X-API-KEY": api_key, "Content-Type": "application/json"}
        self._pool: HttpPool | None = None
        self._closed = False
        self._local = dict(local or {})
        self.failed_attempts = 0
        # Until a batch post says otherwise (404/405), the backend is taken to have the route.
        self.batch_route = True

    def _client(self) -> HttpPool:
        if self._pool is None:
            if self._closed:
                raise RuntimeError("Poster is closed")
            # Keep-alive pool as large as the callers' concurrency (delivery workers), so a
            # burst of logs reuses warm connections instead of paying a TCP handshake each.
            self._pool = HttpPool(
                self._base_url, max_connections=self._max_connections, headers=self._headers
            )
        return self._pool

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        what: str,
        budget: float,
        retry: bool = True,
    ) -> PostResult:
        """POST with retries on transport errors, timeouts, 429 and 5xx until `budget` s.

        `retry=False` makes one attempt whose phases get the whole budget (for callers that
        back off on their own, like the spool drain).
        """
        handler = self._local.get(path)
        if handler is not None:
            result = await handler(body, headers)
            if not result.ok:
                self.failed_attempts += 1
            return result
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        # Serialise once (here, off the callback path); `default=str` keeps odd values loggable.
        content = json_codec.dumps(body)
        pool = self._client()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            retry_after: float | None = None
            # Per phase, not in total: waiting for a pooled connection or connecting, and
            # then each wait for the answer's bytes (a slow but live answer is not cut).
            phase = max(0.05, min(self._attempt_timeout, remaining))
            try:
                response = await pool.post(
                    path, content, headers, connect_timeout=phase, read_timeout=phase
                )
            except TransportError as exc:
                reason = f"{exc} ({type(exc.__cause__).__name__})"
            else:
                status = response.status
                if 200 <= status < 300:
                    return PostResult(status, _json(response.body))
                if status not in RETRY_STATUSES:
                    # The body may echo what we sent, never our key: the key is a header.
                    logger.warning(
                        "%s: PromptLayer answered %s, not retrying: %s",
                        what,
                        status,
                        response.body[:200].decode(errors="replace"),
                    )
                    return PostResult(status, transient=False)
                reason = f"HTTP {status}"
                retry_after = _retry_after(response.headers.get("retry-after"))
            self.failed_attempts += 1
            delay = self.backoff(attempt, retry_after)
            if not retry or loop.time() + delay >= deadline:
                logger.info("%s: not delivered after %d attempts (%s)", what, attempt, reason)
                return PostResult(None, transient=True)
            logger.debug(
                "%s: attempt %d failed (%s), retrying in %.2fs", what, attempt, reason, delay
            )
            await asyncio.sleep(delay)

    async def post_log_batch(
        self, entries: list[tuple[str, Mapping[str, Any]]], *, budget: float, retry: bool = True
    ) -> BatchAnswers:
        """POST (idempotency key, /log-request body) pairs to BATCH_PATH, as `post` would."""
        body = {"requests": [{"idempotency_key": key, "body": log} for key, log in entries]}
        result = await self.post(BATCH_PATH, body, headers={},
                                 what=f"batch of {len(entries)} logs", budget=budget, retry=retry)
        results = result.body.get("results") if result.ok and isinstance(result.body, dict) \
            else None
        if isinstance(results, list) and len(results) == len(entries):
            return BatchAnswers([_batch_answer(r) for r in results])
        if result.status in _NO_BATCH_ROUTE:
            logger.info("PromptLayer has no %s (HTTP %s): posting logs one by one",
                        BATCH_PATH, result.status)
            self.batch_route = False
        return BatchAnswers(None, transient=result.transient, status=result.status)

    @property
    def attempt_timeout(self) -> float:
        """Seconds each phase of one attempt may take (connecting, each wait for bytes)."""
        return self._attempt_timeout

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt `attempt + 1`: exponential, jittered, at least Retry-After."""
        cap: float = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        # "Equal jitter": grows exponentially, yet spreads replicas that failed together.
        delay = cap / 2 + random.uniform(0, cap / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    async def aclose(self) -> None:
        """Close the pool (and refuse further posts)."""
        self._closed = True
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


def log_outcome(status: int | None, answer: Any, *, transient: bool) -> tuple[int | None, bool]:
    """What one log's answer (alone or within a batch) means: (request id, False) if stored;
    (None, True) if it may heal (no answer, 429, 5xx); (None, False) if refused for good, or
    stored without a usable id."""
    if status is not None and 200 <= status < 300:
        try:
            return int(answer["id"]), False
        except (ValueError, KeyError, TypeError):
            return None, False
    return None, transient or status is None or status in RETRY_STATUSES


def _batch_answer(result: Any) -> tuple[int | None, Any]:
    # {"status_code": 201, "body": {...}}: what /log-request would have answered this log.
    if not isinstance(result, dict):
        return None, None
    status = result.get("status_code")
    return (status if isinstance(status, int) else None), result.get("body")


def _json(raw: bytes) -> Any:
    """The parsed body, or None when a 2xx answer is not JSON (callers then find no id)."""
    try:
        return json_codec.loads(raw)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), _MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own back-off
