"""POSTs to PromptLayer over one keep-alive pool (tracing._http), retrying what may heal.

Retries and duplicates: every log carries an Idempotency-Key (its LLM run id). Our backend
stores a repeat once; the hosted PromptLayer ignores the header, so there a log sent twice is
stored twice. `Poster.keys_honoured` says which kind of backend this is: True once it has
answered our batch route (only our backend has one), False once it answered that route 404
or 405 (the hosted one), None before either: then a post is retried as it always was.
Where keys are not honoured, a keyed post written in full is never sent again after a read
timeout. Its answer is awaited for `confirm_timeout` s instead of the attempt's few seconds
(a slow answer then lands late, once), and when none comes, or one that cannot be read, the
log is uncertain: it is not resent, it is counted (`uncertain`), and it is set aside with
the reason in `uncertain_file` for an operator to check against PromptLayer. Posts that
failed before anything was written, or whose connection was lost before any byte of an
answer, a 429 and a 5xx are still retried: the server did not act on them, or said it
failed, or most likely went away before storing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from promptserve import json_codec
from promptserve.jsonl import append_durably
from promptserve.tracing._http import HttpPool, RedirectError, TransportError
from promptserve.tracing._proxy import proxy_for
from promptserve.tracing._tls import verify_context

__all__ = [
    "BATCH_PATH",
    "CONFIRM_TIMEOUT",
    "RETRY_STATUSES",
    "UNCERTAIN",
    "UNCERTAIN_FILE",
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

# How long a written log waits for its answer where a resend could store it twice: longer
# than any healthy answer, and than most gateways wait before they answer 504 themselves.
CONFIRM_TIMEOUT = 60.0
# Where a spooling delivery sets aside logs whose fate is unknown (beside the spool's files).
UNCERTAIN_FILE = "uncertain.jsonl"
# Failure stages after which the server may have stored the log (_http_errors).
_UNCERTAIN_STAGES = frozenset({"timeout", "answer"})


class _Uncertain:
    """The body of an uncertain PostResult: no answer to read, and not to be resent."""

    def __repr__(self) -> str:
        return "UNCERTAIN"


UNCERTAIN: Any = _Uncertain()


@dataclass(frozen=True, slots=True)
class PostResult:
    """The outcome of one `post`: the 2xx answer's status and parsed JSON body, or no
    success (`status` None if nothing answered) with whether the last failure may heal."""

    status: int | None = None
    body: Any = None
    transient: bool = False
    # Written in full, then no usable answer, from a backend that ignores Idempotency-Key:
    # it may have been stored, so it is not sent again (`transient` is False).
    uncertain: bool = False

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
        environ: Mapping[str, str] | None = None,
        uncertain_file: Path | None = None,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        """A client sending `api_key` in X-API-KEY to `base_url`; paths in `local` are
        answered by their in-process handler instead (no retries: nothing to heal).

        Proxy and CA settings come from `environ` (default: the process's environment, where
        every HTTP client of the process reads them: promptserve.tracing._proxy, _tls); a
        setting that cannot work raises ValueError here, at start-up, not on the first log.
        """
        self._base_url = base_url.rstrip("/")
        self._attempt_timeout = attempt_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_connections = max_connections
        self._headers = {"X-API-KEY": api_key, "Content-Type": "application/json"}
        settings = os.environ if environ is None else environ
        self._proxy = proxy_for(self._base_url, settings)
        https = urlsplit(self._base_url).scheme == "https"
        self._ssl = verify_context(settings) if https else None
        self._uncertain_file = uncertain_file
        self._confirm_timeout = confirm_timeout
        self._pool: HttpPool | None = None
        self._closed = False
        self._local = dict(local or {})
        self.failed_attempts = 0
        self.uncertain = 0
        # Until a batch post says otherwise (404/405), the backend is taken to have the route.
        self.batch_route = True
        # Whether the backend stores a repeated Idempotency-Key once (module docstring).
        self.keys_honoured: bool | None = True if BATCH_PATH in self._local else None

    def _client(self) -> HttpPool:
        if self._pool is None:
            if self._closed:
                raise RuntimeError("Poster is closed")
            # Keep-alive pool as large as the callers' concurrency (delivery workers), so a
            # burst of logs reuses warm connections instead of paying a TCP handshake each.
            self._pool = HttpPool(
                self._base_url, max_connections=self._max_connections, headers=self._headers,
                ssl_context=self._ssl, proxy=self._proxy,
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
        key = headers.get("Idempotency-Key")
        # A resend could store it twice: once written, wait long for its answer instead.
        once = key is not None and self.keys_honoured is False
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            retry_after: float | None = None
            # Per phase, not in total: waiting for a pooled connection or connecting, and
            # then each wait for the answer's bytes (a slow but live answer is not cut).
            phase = max(0.05, min(self._attempt_timeout, remaining))
            read = max(phase, self._confirm_timeout) if once else phase
            try:
                response = await pool.post(
                    path, content, headers, connect_timeout=phase, read_timeout=read
                )
            except RedirectError as exc:
                # Asking again gets the same answer: no retries, the caller keeps the log.
                self.failed_attempts += 1
                logger.warning("%s: not delivered: %s", what, exc)
                return PostResult(None, transient=True)
            except TransportError as exc:
                reason = f"{exc} ({type(exc.__cause__).__name__})"
                if once and exc.stage in _UNCERTAIN_STAGES:
                    assert key is not None
                    self.failed_attempts += 1
                    await self._set_aside(key, body, what, reason)
                    return PostResult(None, UNCERTAIN, uncertain=True)
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
            self.keys_honoured = True  # our backend: the only one with this route
            return BatchAnswers([_batch_answer(r) for r in results])
        if result.status in _NO_BATCH_ROUTE:
            logger.info("PromptLayer has no %s (HTTP %s): posting logs one by one",
                        BATCH_PATH, result.status)
            self.batch_route = False
            self.keys_honoured = False
        return BatchAnswers(None, transient=result.transient, status=result.status)

    async def learn_keys(self) -> bool | None:
        """Ask the backend, with an empty batch, whether it honours Idempotency-Key (our
        backend answers the batch route, the hosted one 404); `keys_honoured` after it.

        One quiet attempt: a failure leaves `keys_honoured` as it was, and is not counted.
        """
        if self.keys_honoured is not None:
            return self.keys_honoured
        try:
            response = await self._client().post(
                BATCH_PATH, b'{"requests": []}', connect_timeout=self._attempt_timeout,
                read_timeout=self._attempt_timeout)
        except TransportError as exc:
            logger.info("could not tell whether PromptLayer honours Idempotency-Key (%s): "
                        "until it says, a log may be sent twice after a timeout", exc)
            return None
        if 200 <= response.status < 300 and isinstance(_json(response.body), dict):
            self.keys_honoured = True
        elif response.status in _NO_BATCH_ROUTE:
            self.keys_honoured = self.batch_route = False
        return self.keys_honoured

    async def _set_aside(self, key: str, body: Mapping[str, Any], what: str,
                         reason: str) -> None:
        """Count an uncertain log and keep it, with why, where an operator can find it."""
        self.uncertain += 1
        logger.warning(
            "%s: written, then %s; PromptLayer may have stored it and ignores Idempotency-Key, "
            "so it is not sent again%s", what, reason,
            f" (kept in {self._uncertain_file})" if self._uncertain_file else "")
        if self._uncertain_file is None:
            return
        line = json_codec.dumps({"k": key, "b": body, "why": reason}) + b"\n"
        try:
            await asyncio.to_thread(append_durably, self._uncertain_file, line)
        except OSError:
            logger.exception("%s: could not be set aside in %s", what, self._uncertain_file)

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
    (None, True) if it may heal (no answer, 429, 5xx); (None, False) if refused for good,
    stored without a usable id, or uncertain (set aside by Poster, not to be resent)."""
    if status is not None and 200 <= status < 300:
        try:
            return int(answer["id"]), False
        except (ValueError, KeyError, TypeError):
            return None, False
    if answer is UNCERTAIN:
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
