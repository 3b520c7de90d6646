"""A small HTTP/1.1 keep-alive client for one origin: POST a body, read the whole answer.

Log delivery sends one small POST per traced LLM call on the same event loop that serves
users, so the client's CPU per request is the service's throughput. aiohttp spends about
1.6 times what this does (BENCHMARKS.md, "Delivery client cost"): here a connection is an
`asyncio.Protocol` and httptools (llhttp, uvicorn's parser) reads the answers.

What the hosted PromptLayer needs on top, each in its own module: an http proxy
(`_proxy` picks it, `_tunnel` CONNECTs through it for https; http goes in absolute form),
certificates verified against a given CA bundle (`_tls`: certifi or SSL_CERT_FILE), a
User-Agent, gzip and deflate answers (`_codings`), same-origin 307/308 redirects followed and
every other 3xx refused (`_redirects`), and answers bounded to `max_answer_bytes`, before
and after decompression.

Any failure without a complete, usable answer raises `TransportError` (cause chained), whose
`stage` says whether the server may have acted on the request (`_http_errors`), and the
connection it happened on is never reused (but for an answer read in full whose body does
not decode: the stream is still in step).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import importlib.metadata
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from promptserve.tracing._codings import ACCEPT_ENCODING, decode
from promptserve.tracing._connection import MAX_ANSWER_BYTES, Connection, Response
from promptserve.tracing._http_errors import RedirectError, TransportError, failure
from promptserve.tracing._proxy import Proxy
from promptserve.tracing._redirects import MAX_REDIRECTS, redirect_target
from promptserve.tracing._tls import verify_context
from promptserve.tracing._tunnel import open_tunnel

__all__ = ["MAX_ANSWER_BYTES", "HttpPool", "RedirectError", "Response", "TransportError",
           "user_agent"]

# Below uvicorn's default keep-alive (5 s, ours too), so we close an idle connection before
# the server does: a request written as the server closes would fail for nothing.
DEFAULT_IDLE_TIMEOUT = 4.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.cache
def user_agent() -> str:
    """`promptserve/<installed version>`, sent with every request."""
    try:
        version = importlib.metadata.version("promptserve")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"  # run from a source tree that was never installed
    return f"promptserve/{version}"


class HttpPool:
    """Keep-alive connections to the origin of `base_url`, at most `max_connections` open.

    `post(path)` requests `base_url`'s path + `path`. Callers beyond `max_connections` wait
    for a free connection within their connect timeout. A connection idle for more than
    `idle_timeout` s, closed by the server, or that failed is not reused. Connections go
    through `proxy` if given; https is verified with `ssl_context` (default: certifi's CA
    bundle). Bind it to one event loop: the one running when it is created.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        headers: Mapping[str, str] | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in _DEFAULT_PORTS or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = url.hostname
        self._port = url.port or _DEFAULT_PORTS[url.scheme]
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or verify_context({})
        self._proxy = proxy
        self._max_answer = max_answer_bytes
        self._prefix = url.path.rstrip("/")
        host = f"[{self._host}]" if ":" in self._host else self._host
        if url.port is not None and url.port != _DEFAULT_PORTS[url.scheme]:
            host = f"{host}:{url.port}"
        self._origin = f"{url.scheme}://{host}"
        # Through a proxy, plain http names the whole URL in the request line (absolute
        # form); https goes through a CONNECT tunnel and looks direct from inside it.
        plain_proxy = proxy is not None and self._ssl is None
        self._target_prefix = self._origin if plain_proxy else ""
        fixed = {"host": ("Host", host), "user-agent": ("User-Agent", user_agent()),
                 "accept-encoding": ("Accept-Encoding", ACCEPT_ENCODING)}
        if plain_proxy and proxy is not None and proxy.authorization is not None:
            fixed["proxy-authorization"] = ("Proxy-Authorization", proxy.authorization)
        fixed.update({name.lower(): (name, value) for name, value in (headers or {}).items()})
        # The part of every request head that never changes, encoded once.
        self._fixed_head = _header_lines(dict(fixed.values())).encode("latin-1")
        self._idle_timeout = idle_timeout
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(max_connections)
        # Most recently used on the left: reuse the warmest, let the oldest expire.
        self._idle: collections.deque[Connection] = collections.deque()
        self._open: set[Connection] = set()
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
        `read_timeout` each wait for the answer's bytes. Same-origin 307/308 redirects are
        followed (each hop with both timeouts afresh); any other 3xx raises RedirectError.
        """
        if self._closed:
            raise RuntimeError("HttpPool is closed")
        if not path.startswith("/") or any(c in path for c in " \r\n"):
            raise ValueError(f"bad request path: {path!r}")
        target, extra = self._prefix + path, _header_lines(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            request = self._request(target, content, extra)
            response = await self._exchange(request, connect_timeout, read_timeout)
            if not 300 <= response.status < 400:
                return self._decoded(response)
            target = redirect_target(response.status, response.headers.get("location"),
                                     url=self._origin + target)
        raise RedirectError(f"more than {MAX_REDIRECTS} redirects, the last to {target}",
                            status=response.status, location=self._origin + target)

    async def _exchange(self, request: bytes, connect_timeout: float,
                        read_timeout: float) -> Response:
        loop = self._loop
        deadline = loop.time() + connect_timeout
        if self._slots.locked():
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise failure("no free connection in time", exc) from exc
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

    def _request(self, target: str, content: bytes, extra_headers: str) -> bytes:
        head = (
            f"POST {self._target_prefix}{target} HTTP/1.1\r\n".encode("latin-1")
            + self._fixed_head
            + f"Content-Length: {len(content)}\r\n{extra_headers}\r\n".encode("latin-1")
        )
        return head + content

    def _decoded(self, response: Response) -> Response:
        coding = response.headers.get("content-encoding")
        if coding is None or not response.body:
            return response
        try:
            body = decode(response.body, coding, limit=self._max_answer)
        except ValueError as exc:
            raise TransportError(str(exc), stage="answer") from exc
        headers = {k: v for k, v in response.headers.items() if k != "content-encoding"}
        return Response(response.status, headers, body)

    def _reuse(self) -> Connection | None:
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

    async def _connect(self, deadline: float) -> Connection:
        def connection() -> Connection:
            return Connection(self._loop, self._open.discard, self._max_answer)

        proxy = self._proxy
        where = f"{self._host}:{self._port}" + (f" through proxy {proxy.label}" if proxy else "")
        try:
            async with asyncio.timeout_at(deadline):
                if proxy is not None and self._ssl is not None:
                    made = await open_tunnel(self._loop, proxy, host=self._host,
                                             port=self._port, tls=self._ssl,
                                             protocol=connection, user_agent=user_agent())
                else:
                    host, port = (proxy.host, proxy.port) if proxy else (self._host, self._port)
                    direct_tls = self._ssl if proxy is None else None
                    _, made = await self._loop.create_connection(
                        connection, host, port, ssl=direct_tls,
                        server_hostname=self._host if direct_tls is not None else None,
                    )
        except TransportError:
            raise  # the proxy refused: its message says why
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise failure(f"cannot connect to {where}", exc) from exc
        self._open.add(made)
        return made


def _header_lines(headers: Mapping[str, Any]) -> str:
    lines = []
    for name, value in headers.items():
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(line + "\r\n")
    return "".join(lines)
