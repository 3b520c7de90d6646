"""A small HTTP/1.1 keep-alive client for one origin: POST a body, read the whole answer.

Log delivery sends one small POST per traced LLM call on the same event loop that serves
users, so the client's CPU per request is the service's throughput. aiohttp spends about
1.6 times what this does (BENCHMARKS.md, "Delivery client cost"): here a connection is an
`asyncio.Protocol` and httptools (llhttp, uvicorn's parser) reads the answers.

Any failure without a complete answer raises `TransportError` (cause chained), and the
connection it happened on is never reused.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpPool", "Response", "TransportError"]

# Below uvicorn's default keep-alive (5 s, ours too), so we close an idle connection before
# the server does: a request written as the server closes would fail for nothing.
DEFAULT_IDLE_TIMEOUT = 4.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TransportError(Exception):
    """No complete answer: refused, reset, closed early, malformed, or timed out."""


@dataclass(frozen=True, slots=True)
class Response:
    """A complete answer; header names are lower-case, repeated ones joined by ", "."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def _failure(message: str, cause: BaseException | None = None) -> TransportError:
    error = TransportError(message)
    error.__cause__ = cause
    return error


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: at most one request in flight, answers parsed as they come."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_close: Callable[[_Connection], None]
    ) -> None:
        self._loop = loop
        self._on_close = on_close
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
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
        self._status, self._headers, self._body = 0, {}, []
        self._headers_done = self._until_eof = self.received_any = False
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
        self._fail(_failure(f"no answer within {self._read_timeout:g} s", TimeoutError()))

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
            self._fail(_failure("malformed answer", exc))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and self._headers_done and self._until_eof:
            self.reusable = False
            self._finish(Response(self._status, self._headers, b"".join(self._body)))
        elif self._waiter is not None:
            self.dropped_unanswered = not self.received_any
            reason = "connection lost" if exc else "connection closed before the answer ended"
            self._fail(_failure(reason, exc))
        self.close()

    # -- httptools callbacks (they must not raise: the parser would wrap the error) ------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            self.reusable = False  # an answer nobody asked for follows the last one
        self._status, self._headers, self._body = 0, {}, []
        self._headers_done = self._until_eof = False

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        no_body = self._status < 200 or self._status in (204, 304)
        chunked = "chunked" in self._headers.get("transfer-encoding", "").lower()
        self._until_eof = not no_body and not chunked and "content-length" not in self._headers

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            return  # an interim answer (100 Continue, 103): the real one follows
        if self._waiter is None:
            self.close()  # a second answer to one request
            return
        self.reusable = self.reusable and self._parser.should_keep_alive()
        self._finish(Response(self._status, self._headers, b"".join(self._body)))


class HttpPool:
    """Keep-alive connections to the origin of `base_url`, at most `max_connections` open.

    `post(path)` requests `base_url`'s path + `path`. Callers beyond `max_connections` wait
    for a free connection within their connect timeout. A connection idle for more than
    `idle_timeout` s, closed by the server, or that failed is not reused. Bind it to one
    event loop: the one running when it is created.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        headers: Mapping[str, str] | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in _DEFAULT_PORTS or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = url.hostname
        self._port = url.port or _DEFAULT_PORTS[url.scheme]
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        self._prefix = url.path.rstrip("/")
        host = f"[{self._host}]" if ":" in self._host else self._host
        if url.port is not None and url.port != _DEFAULT_PORTS[url.scheme]:
            host = f"{host}:{url.port}"
        # The part of every request head that never changes, encoded once.
        self._fixed_head = f"Host: {host}\r\n{_header_lines(headers or {})}".encode("latin-1")
        self._idle_timeout = idle_timeout
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(max_connections)
        # Most recently used on the left: reuse the warmest, let the oldest expire.
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open: set[_Connection] = set()
        self._closed = False

    async def post(
        self,
        path: str,
        content: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Response:
        """POST `content`; the complete answer, whatever its status, or TransportError.

        `connect_timeout` bounds waiting for a free connection plus connecting;
        `read_timeout` each wait for the answer's bytes.
        """
        if self._closed:
            raise RuntimeError("HttpPool is closed")
        request = self._request(path, content, headers or {})
        loop = self._loop
        deadline = loop.time() + connect_timeout
        if self._slots.locked():
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise _failure("no free connection in time", exc) from exc
        else:
            await self._slots.acquire()  # returns at once
        try:
            while True:
                connection = self._reuse() or await self._connect(deadline)
                try:
                    response = await connection.send(request, read_timeout)
                except TransportError:
                    # A reused connection the server closed as we wrote (its keep-alive
                    # ran out): it answered nothing, so ask again, on another connection.
                    if connection.served and connection.dropped_unanswered:
                        deadline = loop.time() + connect_timeout
                        continue
                    raise
                finally:
                    if connection.answering:  # cancelled mid-exchange
                        connection.close()
                connection.served += 1
                if connection.reusable and not self._closed:
                    connection.idle_since = loop.time()
                    self._idle.appendleft(connection)
                    self._expire_idle()
                else:
                    connection.close()
                return response
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Close every connection; further posts raise RuntimeError."""
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        # Let the transports' connection_lost callbacks run before the loop may close.
        await asyncio.sleep(0)

    def _request(self, path: str, content: bytes, headers: Mapping[str, str]) -> bytes:
        if not path.startswith("/") or any(c in path for c in " \r\n"):
            raise ValueError(f"bad request path: {path!r}")
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1")
            + self._fixed_head
            + f"Content-Length: {len(content)}\r\n{_header_lines(headers)}\r\n".encode("latin-1")
        )
        return head + content

    def _reuse(self) -> _Connection | None:
        now = self._loop.time()
        while self._idle:
            connection = self._idle.popleft()
            if connection.closed:
                continue
            if now - connection.idle_since > self._idle_timeout:
                connection.close()
                continue
            return connection
        return None

    def _expire_idle(self) -> None:
        limit = self._loop.time() - self._idle_timeout
        while self._idle and self._idle[-1].idle_since < limit:
            self._idle.pop().close()

    async def _connect(self, deadline: float) -> _Connection:
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await self._loop.create_connection(
                    lambda: _Connection(self._loop, self._open.discard),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise _failure(f"cannot connect to {self._host}:{self._port}", exc) from exc
        self._open.add(connection)
        return connection


def _header_lines(headers: Mapping[str, Any]) -> str:
    lines = []
    for name, value in headers.items():
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(line + "\r\n")
    return "".join(lines)
