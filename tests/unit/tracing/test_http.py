"""HttpPool against real servers on free ports: uvicorn, and raw asyncio servers that
misbehave on purpose (the wire is scripted per test, the client is the real one)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from promptserve.tracing._http import HttpPool, TransportError
from tests.utils.servers import free_port, serve_in_thread
from tests.utils.stub_http import tcp_server

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
# Serves one accepted connection; gets its index (0 for the first connection, ...).
Serve = Callable[[int, Reader, Writer], Awaitable[None]]

TIMEOUTS = {"connect_timeout": 1.0, "read_timeout": 1.0}


@dataclass
class Sent:
    """A request as the server received it."""
    head: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}


@dataclass
class RawServer:
    url: str = ""
    port: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[Sent] = field(default_factory=list)
    # Set for each connection the client closed (EOF seen while waiting for a request).
    closed_by_client: list[int] = field(default_factory=list)


async def read_request(reader: Reader) -> Sent | None:
    """The next request on the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    text = head.decode("latin-1")
    request = Sent(text, b"")
    request.body = await reader.readexactly(int(request.headers.get("content-length", "0")))
    return request


def answer(body: bytes = b'{"id": 1}', *, status: str = "201 Created", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


@contextlib.asynccontextmanager
async def raw_server(
    serve: Serve, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[RawServer]:
    state = RawServer()

    async def on_connection(reader: Reader, writer: Writer) -> None:
        index = state.connections
        state.connections += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            await serve(index, reader, writer)
        finally:
            state.open_now -= 1

    async with tcp_server(on_connection, tls=tls) as port:
        state.port = port
        state.url = f"http://127.0.0.1:{port}"
        yield state


def keep_alive(state_of: Callable[[], RawServer], respond: bytes = b"") -> Serve:
    """Answer every request on the connection with `respond` (default: a 201 JSON)."""

    async def serve(index: int, reader: Reader, writer: Writer) -> None:
        while (request := await read_request(reader)) is not None:
            state_of().requests.append(request)
            writer.write(respond or answer())
            await writer.drain()
        state_of().closed_by_client.append(index)

    return serve


@contextlib.asynccontextmanager
async def pool_for(url: str, **kwargs: Any) -> AsyncIterator[HttpPool]:
    pool = HttpPool(url, **{"max_connections": 4, **kwargs})
    try:
        yield pool
    finally:
        await pool.aclose()


async def until(check: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# -- the request and keep-alive ---------------------------------------------------------------


async def test_sequential_posts_share_one_connection_and_send_a_plain_request() -> None:
    holder: list[RawServer] = []
    async with raw_server(keep_alive(lambda: holder[0])) as server:
        holder.append(server)
        async with pool_for(server.url + "/api/", headers={"X-API-KEY": "k"}) as pool:
            for i in range(5):
                response = await pool.post("/log-request", b'{"n": %d}' % i,
                                           {"Idempotency-Key": str(i)}, **TIMEOUTS)
                assert (response.status, response.body) == (201, b'{"id": 1}')
                assert response.headers["content-type"] == "application/json"
        assert server.connections == 1
        first = server.requests[0]
        assert first.head.startswith("POST /api/log-request HTTP/1.1\r\n")
        assert first.headers["host"] == f"127.0.0.1:{server.port}"
        assert first.headers["content-length"] == "8"
        assert first.headers["x-api-key"] == "k"
        assert first.headers["idempotency-key"] == "0"
        assert "expect" not in first.headers
        assert [r.body for r in server.requests] == [b'{"n": %d}' % i for i in range(5)]


async def test_against_uvicorn_keep_alive_and_chunked_answers() -> None:
    async def log(request: Request) -> JSONResponse:
        assert request.client is not None
        return JSONResponse({"port": request.client.port, "got": (await request.json())["n"]})

    async def chunked(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                yield part
                await asyncio.sleep(0.01)
        return StreamingResponse(parts())  # no Content-Length: uvicorn sends it chunked

    app = Starlette(routes=[Route("/log", log, methods=["POST"]),
                            Route("/chunked", chunked, methods=["POST"])])
    with serve_in_thread(app) as url:
        async with pool_for(url) as pool:
            ports = set()
            for i in range(3):
                response = await pool.post("/log", b'{"n": %d}' % i, **TIMEOUTS)
                assert response.status == 200
                ports.add(response.body.split(b'"port":')[1].split(b",")[0])
            chunked_answer = await pool.post("/chunked", b"", **TIMEOUTS)
            assert chunked_answer.headers["transfer-encoding"] == "chunked"
            assert chunked_answer.body == b"one,two,three"
            again = await pool.post("/log", b'{"n": 9}', **TIMEOUTS)
            ports.add(again.body.split(b'"port":')[1].split(b",")[0])
            assert len(ports) == 1  # one client port: every post went over one connection


async def test_at_most_max_connections_are_open_and_the_others_wait() -> None:
    async def slow(index: int, reader: Reader, writer: Writer) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(answer())

    async with raw_server(slow) as server, pool_for(server.url, max_connections=2) as pool:
        responses = await asyncio.gather(*(pool.post("/", b"x", **TIMEOUTS) for _ in range(8)))
        assert [r.status for r in responses] == [201] * 8
        assert server.connections == 2
        assert server.most_open == 2


async def test_waiting_for_a_free_connection_is_bounded_by_the_connect_timeout() -> None:
    async def stall(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        await asyncio.sleep(3600)

    async with raw_server(stall) as server, pool_for(server.url, max_connections=1) as pool:
        hogging = asyncio.create_task(pool.post("/", b"", connect_timeout=1, read_timeout=5))
        await until(lambda: server.connections == 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TransportError) as caught:
            await pool.post("/", b"", connect_timeout=0.1, read_timeout=5)
        assert loop.time() - started < 0.5
        assert isinstance(caught.value.__cause__, TimeoutError)
        hogging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hogging


# -- how answers end --------------------------------------------------------------------------


async def test_chunked_answer_in_pieces_then_reuse() -> None:
    async def chunked(index: int, reader: Reader, writer: Writer) -> None:
        while await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"3\r\nefg\r\n0\r\n\r\n")

    async with raw_server(chunked) as server, pool_for(server.url) as pool:
        for _ in range(2):
            assert (await pool.post("/", b"", **TIMEOUTS)).body == b"abcdefg"
        assert server.connections == 1


async def test_answer_ending_at_close_then_a_new_connection() -> None:
    async def until_close(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"world")

    async with raw_server(until_close) as server, pool_for(server.url) as pool:
        for _ in range(2):
            response = await pool.post("/", b"", **TIMEOUTS)
            assert (response.status, response.body) == (200, b"hello world")
        assert server.connections == 2


async def test_connection_close_from_the_server_is_not_reused() -> None:
    async def close_header(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(answer(extra="Connection: close\r\n"))
        await asyncio.sleep(3600)  # the server leaves the socket open: the client must not

    async with raw_server(close_header) as server, pool_for(server.url) as pool:
        for _ in range(2):
            assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


async def test_interim_100_continue_is_skipped() -> None:
    holder: list[RawServer] = []

    async def continue_first(index: int, reader: Reader, writer: Writer) -> None:
        while (request := await read_request(reader)) is not None:
            holder[0].requests.append(request)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b'{"id": 5}'))

    async with raw_server(continue_first) as server, pool_for(server.url) as pool:
        holder.append(server)
        for _ in range(2):
            response = await pool.post("/", b"x", **TIMEOUTS)
            assert (response.status, response.body) == (201, b'{"id": 5}')
        assert server.connections == 1


async def test_repeated_headers_are_joined() -> None:
    async def twice(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(answer(extra="Retry-After: 1\r\nX-A: a\r\nX-A: b\r\n"))
        await asyncio.sleep(3600)

    async with raw_server(twice) as server, pool_for(server.url) as pool:
        response = await pool.post("/", b"", **TIMEOUTS)
        assert response.headers["x-a"] == "a, b"
        assert response.headers["retry-after"] == "1"


# -- idle connections -------------------------------------------------------------------------


async def test_a_connection_the_server_closed_while_idle_is_dropped() -> None:
    async def one_then_close(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(answer())
        await writer.drain()

    async with raw_server(one_then_close) as server, pool_for(server.url) as pool:
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        await asyncio.sleep(0.1)
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


async def test_a_reused_connection_closed_as_we_write_is_retried_on_a_new_one() -> None:
    """The keep-alive race: the server closes its idle end just as our request arrives."""
    holder: list[RawServer] = []

    async def one_then_drop_the_next(index: int, reader: Reader, writer: Writer) -> None:
        holder[0].requests.append(await read_request(reader))  # type: ignore[arg-type]
        writer.write(answer())
        await writer.drain()
        holder[0].requests.append(await read_request(reader))  # type: ignore[arg-type]
        # closing unanswered (see raw_server)

    async with raw_server(one_then_drop_the_next) as server, pool_for(server.url) as pool:
        holder.append(server)
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2
        assert len(server.requests) == 3


async def test_a_fresh_connection_closed_unanswered_fails() -> None:
    async def drop(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)

    async with raw_server(drop) as server, pool_for(server.url) as pool:
        with pytest.raises(TransportError):
            await pool.post("/", b"", **TIMEOUTS)
        assert server.connections == 1  # no silent second try on a new connection


async def test_a_connection_idle_too_long_is_closed_not_reused() -> None:
    holder: list[RawServer] = []
    async with raw_server(keep_alive(lambda: holder[0])) as server:
        holder.append(server)
        async with pool_for(server.url, idle_timeout=0.1) as pool:
            assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
            assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
            assert server.connections == 1
            await asyncio.sleep(0.2)
            assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
            assert server.connections == 2
            await until(lambda: server.closed_by_client == [0])


async def test_aclose_closes_every_connection() -> None:
    holder: list[RawServer] = []
    async with raw_server(keep_alive(lambda: holder[0])) as server:
        holder.append(server)
        pool = HttpPool(server.url, max_connections=4)
        await asyncio.gather(*(pool.post("/", b"", **TIMEOUTS) for _ in range(3)))
        assert server.connections == 3
        await pool.aclose()
        await until(lambda: sorted(server.closed_by_client) == [0, 1, 2])
        with pytest.raises(RuntimeError):
            await pool.post("/", b"", **TIMEOUTS)


# -- failures ---------------------------------------------------------------------------------


async def test_connection_refused() -> None:
    async with pool_for(f"http://127.0.0.1:{free_port()}") as pool:
        with pytest.raises(TransportError) as caught:
            await pool.post("/", b"", **TIMEOUTS)
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def _reset(writer: Writer) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # with linger 0: an RST, not a FIN


async def test_reset_mid_answer_fails_and_the_connection_is_not_reused() -> None:
    async def reset_first(index: int, reader: Reader, writer: Writer) -> None:
        while await read_request(reader) is not None:
            if index == 0:
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{\"id\"")
                await writer.drain()
                await asyncio.sleep(0.05)
                _reset(writer)
                return
            writer.write(answer())

    async with raw_server(reset_first) as server, pool_for(server.url) as pool:
        with pytest.raises(TransportError) as caught:
            await pool.post("/", b"", **TIMEOUTS)
        assert isinstance(caught.value.__cause__, ConnectionResetError)
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


@pytest.mark.parametrize("truncated", [
    b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n12345",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
], ids=["content-length", "chunked"])
async def test_truncated_body_fails(truncated: bytes) -> None:
    async def short(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(truncated)

    async with raw_server(short) as server, pool_for(server.url) as pool:
        with pytest.raises(TransportError):
            await pool.post("/", b"", **TIMEOUTS)


async def test_malformed_answer_fails_and_the_connection_is_dropped() -> None:
    async def garbage(index: int, reader: Reader, writer: Writer) -> None:
        while await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 two hundred\r\nnonsense\r\n\r\n" if index == 0 else answer())

    async with raw_server(garbage) as server, pool_for(server.url) as pool:
        with pytest.raises(TransportError) as caught:
            await pool.post("/", b"", **TIMEOUTS)
        assert isinstance(caught.value.__cause__, httptools.HttpParserError)
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


async def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    async def extra(index: int, reader: Reader, writer: Writer) -> None:
        while await read_request(reader) is not None:
            writer.write(answer() + b"HTTP/1.1 200 OK\r\n")

    async with raw_server(extra) as server, pool_for(server.url) as pool:
        for _ in range(2):
            assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


async def test_read_timeout_when_the_server_never_answers() -> None:
    async def stall(index: int, reader: Reader, writer: Writer) -> None:
        while await read_request(reader) is not None:
            if index == 0:
                await asyncio.sleep(3600)
            writer.write(answer())

    async with raw_server(stall) as server, pool_for(server.url) as pool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TransportError) as caught:
            await pool.post("/", b"", connect_timeout=1, read_timeout=0.2)
        assert 0.15 < loop.time() - started < 0.6
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


async def test_read_timeout_is_per_wait_so_a_slow_live_answer_completes() -> None:
    async def trickle(index: int, reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        whole = answer(b"0123456789")
        for start in range(0, len(whole), 8):  # ~12 pieces, 0.1 s apart: ~1.2 s in all
            writer.write(whole[start:start + 8])
            await writer.drain()
            await asyncio.sleep(0.1)

    async with raw_server(trickle) as server, pool_for(server.url) as pool:
        # Each wait is 0.1 s, well within 0.5 s (a loaded machine's hiccup is no failure);
        # the whole answer takes more than twice the read timeout.
        response = await pool.post("/", b"", connect_timeout=1, read_timeout=0.5)
        assert response.body == b"0123456789"


async def test_connect_timeout() -> None:
    # A listener that never accepts, its backlog filled: further SYNs go unanswered.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.05)
        async with pool_for(f"http://127.0.0.1:{port}") as pool:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TransportError) as caught:
                await pool.post("/", b"", connect_timeout=0.2, read_timeout=5)
            assert loop.time() - started < 1.0
            assert isinstance(caught.value.__cause__, TimeoutError)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_cancelled_post_closes_its_connection() -> None:
    holder: list[RawServer] = []

    async def silent_first(index: int, reader: Reader, writer: Writer) -> None:
        if index == 0:
            await read_request(reader)
            assert await reader.read() == b""  # answers nothing, waits for the client's close
            holder[0].closed_by_client.append(index)
            return
        while await read_request(reader) is not None:
            writer.write(answer())

    async with raw_server(silent_first) as server, pool_for(server.url) as pool:
        holder.append(server)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await pool.post("/", b"", connect_timeout=1, read_timeout=30)
        await until(lambda: server.closed_by_client == [0])
        assert (await pool.post("/", b"", **TIMEOUTS)).status == 201
        assert server.connections == 2


async def test_bad_urls_paths_and_headers_are_refused() -> None:
    with pytest.raises(ValueError):
        HttpPool("ftp://example.org", max_connections=1)
    with pytest.raises(ValueError):
        HttpPool("http://x", max_connections=1, headers={"A": "b\r\nInjected: 1"})
    async with pool_for("http://127.0.0.1:9") as pool:
        with pytest.raises(ValueError):
            await pool.post("/a b", b"", **TIMEOUTS)
        with pytest.raises(ValueError):
            await pool.post("/", b"", {"Idempotency-Key": "a\nb"}, **TIMEOUTS)


# -- https --------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_with_sni_and_keep_alive(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,func-returns-value]
    holder: list[RawServer] = []
    async with raw_server(keep_alive(lambda: holder[0]), tls=server_context) as server:
        holder.append(server)
        trusting = ssl.create_default_context(cafile=str(cert))
        async with pool_for(f"https://localhost:{server.port}", ssl_context=trusting) as pool:
            for _ in range(2):
                assert (await pool.post("/", b"{}", **TIMEOUTS)).status == 201
        assert server.connections == 1
        assert names == ["localhost"]
        assert server.requests[0].headers["host"] == f"localhost:{server.port}"
        # Without trusting our certificate, the default context refuses it.
        async with pool_for(f"https://localhost:{server.port}") as pool:
            with pytest.raises(TransportError) as caught:
                await pool.post("/", b"{}", **TIMEOUTS)
            assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
