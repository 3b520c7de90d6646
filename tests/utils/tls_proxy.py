"""Real TLS and proxies for HTTP client tests: a throwaway CA, a proxy, a scripted origin.

- `make_ca(directory)`: a certificate authority made with the openssl command (the
  `cryptography` package is not installed; nothing downloads), which issues server
  certificates for any names;
- `http_proxy()`: a proxy on 127.0.0.1 that tunnels CONNECT and relays absolute-form http
  requests, resolving made-up names through `hosts`, and records what it was asked;
- `origin(answer)`: an HTTP/1.1 server (TLS if given a context) whose every answer is
  scripted per request, keep-alive, recording each request as it arrived.
All listen on ephemeral ports and stop when their block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.utils.stub_http import tcp_server

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


# -- a certificate authority -------------------------------------------------------------------


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA whose certificate (`cert`, PEM) a client can trust; it signs server certificates."""

    directory: Path
    cert: Path
    key: Path

    def issue(self, *names: str) -> tuple[Path, Path]:
        """A server certificate and key for `names` (DNS names or IP addresses)."""
        stem = f"{names[0].replace(':', '_')}-{uuid.uuid4().hex[:8]}"
        key, csr, cert, ext = (self.directory / f"{stem}{s}" for s in (".key", ".csr", ".pem",
                                                                        ".ext"))
        alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
        ext.write_text(f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                       "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        _openssl("req", "-new", *_EC_KEY, "-subj", f"/CN={names[0]}", "-keyout", str(key),
                 "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey",
                 str(self.key), "-CAcreateserial", "-days", "1", "-extfile", str(ext),
                 "-out", str(cert))
        return cert, key

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a certificate for `names`."""
        cert, key = self.issue(*names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context


def make_ca(directory: Path) -> CertificateAuthority:
    """A fresh CA in `directory` (skips the test where the openssl command is missing)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate authority")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", *_EC_KEY, "-days", "1", "-subj", "/CN=promptserve test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", str(key), "-out", str(cert))
    return CertificateAuthority(directory, cert, key)


def hashed_directory(ca: CertificateAuthority, directory: Path) -> Path:
    """`directory` holding the CA's certificate under its hash name (for SSL_CERT_DIR)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca.cert, directory / "ca.pem")
    _openssl("rehash", str(directory))
    return directory


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# -- the wire ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A request as the server read it (header names lower-cased)."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


async def _read_head(reader: Reader) -> tuple[str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first, headers, head


async def _pipe(source: Reader, target: Writer) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(65536):
            target.write(data)
            await target.drain()
    with contextlib.suppress(OSError, RuntimeError, NotImplementedError):
        target.write_eof()


# -- a proxy ---------------------------------------------------------------------------------


@dataclass
class ProxyLog:
    """What the proxy was asked: CONNECT targets, relayed request lines, credentials."""

    url: str = ""
    connections: int = 0
    connects: list[str] = field(default_factory=list)
    relayed: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


@contextlib.asynccontextmanager
async def http_proxy(
    *, hosts: Mapping[str, str] | None = None, refuse: int | None = None
) -> AsyncIterator[ProxyLog]:
    """A proxy on 127.0.0.1: CONNECT tunnels (answered `refuse` instead, if given) and plain
    requests relayed as they are; `hosts` maps made-up names to the addresses they reach."""
    log = ProxyLog()
    names = dict(hosts or {})

    async def handle(reader: Reader, writer: Writer) -> None:
        log.connections += 1
        read = await _read_head(reader)
        if read is None:
            return
        first, headers, head = read
        log.authorizations.append(headers.get("proxy-authorization"))
        method, target, _ = first.split(" ", 2)
        if method == "CONNECT":
            log.connects.append(target)
            if refuse is not None:
                phrase = HTTPStatus(refuse).phrase
                writer.write(f"HTTP/1.1 {refuse} {phrase}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                return
            host, _, port = target.rpartition(":")
            host = host.strip("[]")
            up_reader, up_writer = await asyncio.open_connection(names.get(host, host), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            log.relayed.append(first)
            url = urlsplit(target)
            host = url.hostname or ""
            up_reader, up_writer = await asyncio.open_connection(names.get(host, host),
                                                                 url.port or 80)
            up_writer.write(head)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async with tcp_server(handle) as port:
        log.url = f"http://127.0.0.1:{port}"
        yield log


# -- an origin -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Raw answer bytes; `close` after writing them (a body that ends at close), `delay` s
    before them, or `stall` (answer nothing until the connection goes)."""

    raw: bytes = b""
    close: bool = False
    delay: float = 0.0
    stall: bool = False


def reply(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
          length: bool = True) -> Reply:
    """A complete answer; `length=False` leaves Content-Length out and closes after it."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return Reply(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, close=not length)


@dataclass
class Origin:
    """A scripted server: its URL (127.0.0.1), port, and the requests it read."""

    url: str = ""
    port: int = 0
    connections: int = 0
    seen: list[Seen] = field(default_factory=list)


@contextlib.asynccontextmanager
async def origin(
    answer: Callable[[Seen], Reply], *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Origin]:
    """Serve `answer` for each request, keep-alive; `tls` makes it https."""
    state = Origin()

    async def handle(reader: Reader, writer: Writer) -> None:
        state.connections += 1
        while (read := await _read_head(reader)) is not None:
            first, headers, _ = read
            method, target, _ = first.split(" ", 2)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, target, headers, body)
            state.seen.append(seen)
            out = answer(seen)
            if out.stall:
                await reader.read()  # until the client goes
                return
            if out.delay:
                await asyncio.sleep(out.delay)
            writer.write(out.raw)
            await writer.drain()
            if out.close:
                return

    async with tcp_server(handle, tls=tls) as port:
        state.port = port
        state.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        yield state
