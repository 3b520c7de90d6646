"""Cost per /log-request of the HTTP client that delivers logs: ours vs aiohttp vs httpx.

Each client posts the same tracer-shaped body, `n` times with 32 in flight, to a backend
that answers without storing (bench.apps.nostore_backend_app, its own process). Measured:
this process's CPU per request (what delivery costs the service's event loop) and the
server process's CPU per request (what the client's way of writing costs the other side).
Then 100 posts one at a time: wall ms per log without load. Clients alternate, round by
round.
- `LogDelivery`: the product's delivery as shipped (promptserve.tracing._http.HttpPool, at most
  workers + 8 connections; aiohttp before branch `transport`, httpx before branch `perf`);
  since 2026-11-26 evening it batches the logs that queue behind its posts, so with 32 in
  flight this row is per log, not per post;
- `HttpPool max=100`: our pool's bare post loop (body encoded by promptserve.json_codec, as
  Poster does);
- `aiohttp limit=100`: aiohttp.ClientSession.post (bench-only since branch `transport`);
- `httpx pool=100`: a bare httpx.AsyncClient.post loop.
Bare clients get the body encoded once by json.dumps, like the product's old Poster.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench._backend import API_KEY, running_backend
from bench._bodies import log_body
from bench._procs import cpu_seconds
from bench._stats import median, spread
from promptserve import json_codec
from promptserve.tracing import LogDelivery
from promptserve.tracing._http import HttpPool

__all__ = ["ClientsResult", "run_clients"]

Post = Callable[[int], Awaitable[Any]]
_HEADERS = {"X-API-KEY": API_KEY, "Content-Type": "application/json"}


@dataclass
class ClientsResult:
    """CPU ms per request, by client."""

    client_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rate: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Wall ms of one log at a time (no load): what the id event waits for on a stream.
    sequential_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def lines(self) -> list[str]:
        """Human-readable report."""
        out = ["log delivery client cost, 32 in flight (CPU ms per request, median [min–max])"]
        for name in self.client_ms:
            out.append(f"  {name:<18} client {spread(self.client_ms[name])}  "
                       f"server {spread(self.server_ms[name])}  "
                       f"rate {spread(self.rate[name], '{:.0f}')}/s  "
                       f"one at a time p50 {median(self.sequential_ms[name]):.2f} ms")
        return out


async def _load(post: Post, n: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await post(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


async def _clients(url: str, body: dict[str, Any]) -> tuple[dict[str, Post], list[Any]]:
    content = json.dumps(body).encode()
    delivery = LogDelivery(base_url=url, api_key=API_KEY)
    client = httpx.AsyncClient(headers=_HEADERS, limits=httpx.Limits(
        max_connections=100, max_keepalive_connections=100, keepalive_expiry=30))
    session = aiohttp.ClientSession(headers=_HEADERS, connector=aiohttp.TCPConnector(
        limit=100, keepalive_timeout=30))
    pool = HttpPool(url, max_connections=100, headers=_HEADERS)

    async def via_delivery(i: int) -> None:
        assert await delivery.submit(body, idempotency_key=f"c{time.time_ns()}-{i}")

    async def via_httpx(i: int) -> None:
        response = await client.post(url + "/log-request", content=content)
        assert response.json()["id"]

    async def via_pool(i: int) -> None:
        response = await pool.post("/log-request", json_codec.dumps(body),
                                   connect_timeout=5.0, read_timeout=5.0)
        assert json.loads(response.body)["id"]

    async def via_aiohttp(i: int) -> None:
        async with session.post(url + "/log-request", data=content) as response:
            assert json.loads(await response.read())["id"]

    posts: dict[str, Post] = {"LogDelivery": via_delivery, "HttpPool max=100": via_pool,
             "aiohttp limit=100": via_aiohttp, "httpx pool=100": via_httpx}
    return posts, [delivery, pool, client, session]


async def _measure(url: str, server_pid: int, *, n: int, rounds: int) -> ClientsResult:
    result = ClientsResult()
    posts, closers = await _clients(url, log_body(prompt_id=None))
    try:
        for post in posts.values():
            await _load(post, 100, 32)  # warm-up: connections, imports
        names = list(posts)
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                cpu, server = time.process_time(), cpu_seconds(server_pid)
                rate = await _load(posts[name], n, 32)
                result.client_ms[name].append((time.process_time() - cpu) * 1000 / n)
                result.server_ms[name].append((cpu_seconds(server_pid) - server) * 1000 / n)
                result.rate[name].append(rate)
                for i in range(min(n, 100)):
                    started = time.perf_counter()
                    await posts[name](i)
                    result.sequential_ms[name].append((time.perf_counter() - started) * 1000)
    finally:
        for closer in closers:
            await closer.aclose() if hasattr(closer, "aclose") else await closer.close()
    return result


def run_clients(work: Path, *, n: int, rounds: int) -> ClientsResult:
    """Start a no-store backend and measure every client against it."""
    with running_backend("clients-nostore", work, module="bench.serve",
                         kind="backend-nostore") as (server, _):
        return asyncio.run(_measure(server.url, server.pid, n=n, rounds=rounds))
