"""A real HTTP/1.1 server on 127.0.0.1, in the test's event loop, answering from a script.

For client tests that must control the wire: each request is handed to a Python function
that returns an `Answer`, or `DROP` (close the connection without answering), `STALL`
(answer nothing for a long while) or `GARBAGE` (answer bytes that are not HTTP, then
close). Keep-alive, Content-Length bodies only: what our clients send. Not a mock of our
code: the client under test talks to it over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass(frozen=True)
class Answer:
    status: int
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the answer is written (a slow but live server)


DROP = "drop"
STALL = "stall"
GARBAGE = "garbage"
Handler = Callable[[Received], "Answer | str"]


@dataclass
class StubServer:
    url: str
    received: list[Received]
    connections: int = 0


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    content = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, target, headers, content)


@contextlib.asynccontextmanager
async def tcp_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    *,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[int]:
    """Run `handle` for each connection to 127.0.0.1 on an ephemeral port; yield the port.

    A peer that drops the connection ends its handler quietly; the writer is closed after
    each handler, and leaving the block cancels every connection still open.
    """
    tasks: set[asyncio.Task[Any]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def stub_server(handler: Handler) -> AsyncIterator[StubServer]:
    """Serve `handler` on an ephemeral port; yield the server (its URL and what it got)."""
    state = StubServer(url="", received=[])

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        while (request := await _read_request(reader)) is not None:
            state.received.append(request)
            answer = handler(request)
            if answer == DROP:
                return
            if answer == GARBAGE:
                writer.write(b"HTTP/1.1 two hundred\r\nnonsense\r\n\r\n")
                await writer.drain()
                return
            if answer == STALL:
                await asyncio.sleep(3600)
            assert isinstance(answer, Answer)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            body = b"" if answer.json is None else json.dumps(answer.json).encode()
            reason = HTTPStatus(answer.status).phrase
            head = [f"HTTP/1.1 {answer.status} {reason}", "Content-Type: application/json",
                    f"Content-Length: {len(body)}",
                    *(f"{k}: {v}" for k, v in answer.headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()

    async with tcp_server(connection) as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state
