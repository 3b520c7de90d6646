"""One keep-alive HTTP/1.1 connection of HttpPool: an asyncio.Protocol fed to httptools.

At most one request is in flight on it. Parser callbacks must not raise (httptools would wrap
the error), so one that refuses the answer (too large) records why, and the exchange fails
with it as soon as the parser returns. Every failure carries its stage (`_http_errors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httptools

from promptserve.tracing._http_errors import TransportError, failure
from promptserve.tracing._tunnel import MAX_HEAD

__all__ = ["MAX_ANSWER_BYTES", "Connection", "Response"]

# PromptLayer answers a log with its id and a few fields: a megabyte is a broken server.
MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    """A complete answer, decoded; header names are lower-case, repeated ones joined by ", "."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: at most one request in flight, answers parsed as they come."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_close: Callable[[Connection], None],
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._loop = loop
        self._on_close = on_close
        self._max_answer = max_answer_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0  # bytes of the answer's head, then of its body
        # Set by a parser callback (which must not raise); the exchange fails with it.
        self._refused: TransportError | None = None
        self._headers_done = False
        # No Content-Length and not chunked: the body ends when the server closes.
        self._until_eof = False
        self._read_timeout = 0.0
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.received_any = False
        # The peer closed while a request waited and before any byte of its answer.
        self.dropped_unanswered = False
        self.reusable = True
        self.closed = False
        self.served = 0
        self.idle_since = 0.0

    # -- the exchange, driven by HttpPool.post ----------------------------------------------

    def send(self, request: bytes, read_timeout: float) -> asyncio.Future[Response]:
        """Write `request`; the future gets the answer or a TransportError."""
        assert self._transport is not None and self._waiter is None
        self._waiter = self._loop.create_future()
        self._status, self._headers, self._body, self._size = 0, {}, [], 0
        self._headers_done = self._until_eof = self.received_any = False
        self._refused = None
        self._read_timeout = read_timeout
        self._last_read = self._loop.time()
        # One timer per request, re-armed only if bytes came meanwhile: the timeout is per
        # wait for bytes, yet a fast answer costs a single call_later.
        self._timer = self._loop.call_later(read_timeout, self._check_read_timeout)
        self._transport.write(request)
        return self._waiter

    @property
    def answering(self) -> bool:
        """Whether a request is still waiting for its answer."""
        return self._waiter is not None

    def close(self) -> None:
        """Drop the connection at once (abort: nothing of ours is left to flush)."""
        self.reusable = False
        self._stop_timer()
        if not self.closed:
            self.closed = True
            self._on_close(self)
        if self._transport is not None:
            self._transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_read_timeout(self) -> None:
        left = self._last_read + self._read_timeout - self._loop.time()
        if left > 0:
            self._timer = self._loop.call_later(left, self._check_read_timeout)
            return
        self._timer = None
        self._fail(failure(f"no answer within {self._read_timeout:g} s", TimeoutError(),
                           stage="timeout"))

    def _finish(self, response: Response) -> None:
        self._stop_timer()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, error: TransportError) -> None:
        self._stop_timer()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def _refuse(self, message: str) -> None:
        if self._refused is None:
            self._refused = TransportError(message, stage="answer")

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for (an idle connection): the stream is out of step.
            self.close()
            return
        self.received_any = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:  # also covers HttpParserUpgrade (101)
            self._fail(failure("malformed answer", exc, stage="answer"))
            return
        if self._refused is not None:
            self._fail(self._refused)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and self._refused is not None:
            self._fail(self._refused)
        elif self._waiter is not None and self._headers_done and self._until_eof:
            self.reusable = False
            self._finish(Response(self._status, self._headers, b"".join(self._body)))
        elif self._waiter is not None:
            self.dropped_unanswered = not self.received_any
            reason = "connection lost" if exc else "connection closed before the answer ended"
            # Cut short mid-answer, the server had acted on the request; before any byte
            # of it, maybe not.
            self._fail(failure(reason, exc, stage="answer" if self.received_any else "lost"))
        self.close()

    # -- httptools callbacks (they must not raise: the parser would wrap the error) ------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            self.reusable = False  # an answer nobody asked for follows the last one
        self._status, self._headers, self._body, self._size = 0, {}, [], 0
        self._headers_done = self._until_eof = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._size += len(name) + len(value)
        if self._size > MAX_HEAD:
            self._refuse(f"answer head larger than {MAX_HEAD} bytes")
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        self._size = 0
        no_body = self._status < 200 or self._status in (204, 304)
        chunked = "chunked" in self._headers.get("transfer-encoding", "").lower()
        length = self._headers.get("content-length")
        self._until_eof = not no_body and not chunked and length is None
        if length is not None and length.isdigit() and int(length) > self._max_answer:
            self._refuse(f"answer of {length} bytes, more than {self._max_answer}")

    def on_body(self, body: bytes) -> None:
        if self._refused is not None:
            return
        self._size += len(body)
        if self._size > self._max_answer:
            self._refuse(f"answer larger than {self._max_answer} bytes")
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            return  # an interim answer (100 Continue, 103): the real one follows
        if self._waiter is None:
            self.close()  # a second answer to one request
            return
        if self._refused is not None:
            return  # data_received fails the exchange once the parser returns
        self.reusable = self.reusable and self._parser.should_keep_alive()
        self._finish(Response(self._status, self._headers, b"".join(self._body)))
