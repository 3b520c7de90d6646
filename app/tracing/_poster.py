"""POSTs to PromptLayer over one pooled HTTP client, retrying what may heal."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["PostResult", "Poster"]

logger = logging.getLogger(__name__)

# Statuses worth another attempt: the server may recover; every other 4xx never will.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class PostResult:
    """A success's response, or None with whether the last failure may heal."""

    response: httpx.Response | None
    transient: bool = False


class Poster:
    """One keep-alive pool to PromptLayer; `post` retries within a time budget."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        attempt_timeout: float,
        backoff_initial: float,
        backoff_max: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        """A client sending `api_key` in X-API-KEY to `base_url`."""
        self._base_url = base_url.rstrip("/")
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
        self.failed_attempts = 0

    async def post(
        self, path: str, body: Mapping[str, Any], *, headers: Mapping[str, str], what: str,
        budget: float,
    ) -> PostResult:
        """POST with retries on transport errors, timeouts, 429 and 5xx until `budget` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
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
                    return PostResult(response)
                if response.status_code not in _RETRY_STATUSES:
                    # The body may echo what we sent, never our key: the key is a header.
                    logger.warning("%s: PromptLayer answered %s, not retrying: %s",
                                   what, response.status_code, response.text[:200])
                    return PostResult(None, transient=False)
                reason = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            self.failed_attempts += 1
            delay = self.backoff(attempt, retry_after)
            if loop.time() + delay >= deadline:
                logger.info("%s: not delivered after %d attempts (%s)", what, attempt, reason)
                return PostResult(None, transient=True)
            logger.debug("%s: attempt %d failed (%s), retrying in %.2fs", what, attempt,
                         reason, delay)
            await asyncio.sleep(delay)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt `attempt + 1`: exponential, jittered, at least Retry-After."""
        cap: float = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        # "Equal jitter": grows exponentially, yet spreads replicas that failed together.
        delay = cap / 2 + random.uniform(0, cap / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), _MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own back-off
