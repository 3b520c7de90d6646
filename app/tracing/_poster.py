"""POSTs to PromptLayer over one pooled aiohttp session, retrying what may heal."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["LocalHandler", "PostResult", "Poster"]

logger = logging.getLogger(__name__)

# Statuses worth another attempt: the server may recover; every other 4xx never will.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_MAX_RETRY_AFTER = 30.0
# What "no usable answer" looks like: refused/reset/dropped connections, a truncated body or a
# malformed response (aiohttp.ClientError covers them all; like httpx.TransportError before),
# and timeouts.
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)


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


# An endpoint served inside this process (the embedded backend): same body, no HTTP.
LocalHandler = Callable[[Mapping[str, Any], Mapping[str, str]], Awaitable[PostResult]]


class Poster:
    """One keep-alive pool to PromptLayer; `post` retries within a time budget.

    The aiohttp session binds to the event loop it is created in, so it is created on the
    first `post` (always on the owner loop), not in the constructor, which may run outside
    any loop.
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
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._local = dict(local or {})
        self.failed_attempts = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                raise RuntimeError("Poster is closed")
            # Keep-alive pool as large as the callers' concurrency (delivery workers), so a
            # burst of logs reuses warm connections instead of paying a TCP handshake each.
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30.0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                # Per-attempt timeouts are passed to each request.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        what: str,
        budget: float,
    ) -> PostResult:
        """POST with retries on transport errors, timeouts, 429 and 5xx until `budget` s."""
        handler = self._local.get(path)
        if handler is not None:
            result = await handler(body, headers)
            if not result.ok:
                self.failed_attempts += 1
            return result
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        # Serialise once (here, off the callback path); `default=str` keeps odd values loggable.
        content = json.dumps(body, default=str).encode()
        session = self._client()
        url = self._base_url + path
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            retry_after: float | None = None
            # Per phase, not in total: waiting for a pooled connection or connecting, and
            # then each wait for the answer's bytes (a slow but live answer is not cut).
            phase = max(0.05, min(self._attempt_timeout, remaining))
            timeout = aiohttp.ClientTimeout(total=None, connect=phase, sock_read=phase)
            try:
                async with session.post(
                    url, data=content, headers=headers, timeout=timeout
                ) as response:
                    status = response.status
                    raw = await response.read()
                    if 200 <= status < 300:
                        return PostResult(status, _json(raw))
                    if status not in _RETRY_STATUSES:
                        # The body may echo what we sent, never our key: the key is a header.
                        logger.warning(
                            "%s: PromptLayer answered %s, not retrying: %s",
                            what,
                            status,
                            raw[:200].decode(errors="replace"),
                        )
                        return PostResult(status, transient=False)
                    reason = f"HTTP {status}"
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except _TRANSPORT_ERRORS as exc:
                reason = f"{type(exc).__name__}"
            self.failed_attempts += 1
            delay = self.backoff(attempt, retry_after)
            if loop.time() + delay >= deadline:
                logger.info("%s: not delivered after %d attempts (%s)", what, attempt, reason)
                return PostResult(None, transient=True)
            logger.debug(
                "%s: attempt %d failed (%s), retrying in %.2fs", what, attempt, reason, delay
            )
            await asyncio.sleep(delay)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt `attempt + 1`: exponential, jittered, at least Retry-After."""
        cap: float = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        # "Equal jitter": grows exponentially, yet spreads replicas that failed together.
        delay = cap / 2 + random.uniform(0, cap / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    async def aclose(self) -> None:
        """Close the pool (and refuse further posts)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json(raw: bytes) -> Any:
    """The parsed body, or None when a 2xx answer is not JSON (callers then find no id)."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), _MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own back-off
