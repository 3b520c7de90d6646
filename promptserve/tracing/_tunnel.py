"""An https connection through an http proxy: CONNECT, then TLS to the origin over it.

The proxy sees only the origin's host and port (and our Proxy-Authorization); everything
after its 2xx answer is TLS between us and the origin, verified as a direct connection is.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TypeVar

from promptserve.tracing._http_errors import TransportError, failure
from promptserve.tracing._proxy import Proxy

__all__ = ["MAX_HEAD", "open_tunnel"]

# The most header bytes we read from a proxy or a server (uvicorn's h11 limit is 64 KiB).
MAX_HEAD = 64 * 1024

P = TypeVar("P", bound=asyncio.Protocol)


class _ConnectAnswer(asyncio.Protocol):
    """Reads the proxy's answer head to CONNECT; nothing else may come before TLS starts."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.head: asyncio.Future[bytes] = loop.create_future()
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.head.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > MAX_HEAD:
            self.head.set_exception(failure("proxy answer head too large"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(failure("proxy closed the connection during CONNECT", exc))


async def open_tunnel(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    *,
    host: str,
    port: int,
    tls: ssl.SSLContext,
    protocol: Callable[[], P],
    user_agent: str,
) -> P:
    """A protocol from `protocol()` connected over TLS to host:port through `proxy`.

    Raises TransportError when the proxy refuses (its status line in the message), OSError
    (ssl.SSLError included) when connecting or the TLS handshake fails.
    """
    transport, answer = await loop.create_connection(
        lambda: _ConnectAnswer(loop), proxy.host, proxy.port)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {user_agent}"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status_line = (await answer.head).split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if not 200 <= status < 300:
            hint = " (it wants credentials: user:password@ in the proxy URL)" \
                if status == 407 else ""
            raise TransportError(
                f"proxy {proxy.label} refused CONNECT {authority}: {status_line!r}{hint}")
        connection = protocol()
        secure = await loop.start_tls(transport, connection, tls, server_hostname=host)
    except BaseException:
        transport.abort()
        raise
    if secure is None:  # only for a transport closing under us
        transport.abort()
        raise failure("connection closed during the TLS handshake")
    connection.connection_made(secure)
    return connection
