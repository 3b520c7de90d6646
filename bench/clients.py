"""Cost per /log-request of the HTTP client that delivers logs: ours vs aiohttp vs httpx.

Each client posts the same tracer-shaped body, `n` times with 32 in flight, to a backend
that answers without storing (bench.apps.nostore_backend_app, its own process). Measured:
this process's CPU per request (what delivery costs the service's event loop) and the
server process's CPU per request (what the client's way of writing costs the other side).
Then 100 posts one at a time: wall ms per log without load. Clients alternate, round by
round.
- `LogDelivery`: the product's delivery as shipped (promptserve.tracing._http.HttpPool, at most
  workers + 8 connections; aiohttp before branch `transport`, httpx before branch `perf`);
  it batches the logs that queue behind its posts, so with 32 in
  flight this row is per log, not per post;
- `HttpPool max=100`: our pool's bare post loop (body encoded by promptserve.json_codec, as
  Poster does);
- `aiohttp limit=100`: aiohttp.ClientSession.post (bench-only since branch `transport`);
- `httpx pool=100`: a bare httpx.AsyncClient.post loop.
Bare clients get the body encoded once by json.dumps, like the product's old Poster.

`python -m bench.clients ratio` is the hosted case of the client choice: traced ÷
bare on /example/invoke, all in one child process (bench.inprocess's paired rounds), with
delivery batching off (`PROMPTSERVE_DELIVERY_BATCH_MAX=1`: one post per log, what a backend
without the batch route gets) and the product's `LogDelivery` posting through, in turn, our
HttpPool, aiohttp and httpx (adapters below, configured as the product would need them:
proxies from the environment, compressed answers, no redirects followed by the library, the
answer's size checked). Reported: each variant's bare ÷ this, and per round the points a
library variant costs against HttpPool (paired: both from the same round).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx

from bench._asgi_load import app_env
from bench._backend import API_KEY, running_backend, seed
from bench._bodies import log_body
from bench._procs import cpu_seconds
from bench._stats import median, quartile_spread, spread
from promptserve import json_codec
from promptserve.tracing import LogDelivery
from promptserve.tracing._http import MAX_ANSWER_BYTES, HttpPool, Response, TransportError

__all__ = ["ClientsResult", "main", "run_clients", "run_ratio"]

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


# -- the hosted case: traced ÷ bare with each client inside LogDelivery ---------------------------


class _AiohttpPool:
    """HttpPool's `post` over an aiohttp session, as the product would have to set it up."""

    def __init__(self, base_url: str, headers: Mapping[str, str], limit: int) -> None:
        self._base_url, self._headers, self._limit = base_url, dict(headers), limit
        self._session: aiohttp.ClientSession | None = None

    async def post(self, path: str, content: bytes, headers: Mapping[str, str] | None = None,
                   *, connect_timeout: float, read_timeout: float) -> Response:
        if self._session is None:  # on the loop that posts
            self._session = aiohttp.ClientSession(
                headers=self._headers, trust_env=True,  # proxies, NO_PROXY
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=4.0))
        timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout)
        try:
            async with self._session.post(self._base_url + path, data=content, headers=headers,
                                          timeout=timeout, allow_redirects=False) as answer:
                body = await answer.read()
                if len(body) > MAX_ANSWER_BYTES:
                    raise TransportError("answer too large", stage="answer")
                return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()},
                                body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(str(exc)) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _HttpxPool:
    """HttpPool's `post` over an httpx.AsyncClient, set up as the product would need it."""

    def __init__(self, base_url: str, headers: Mapping[str, str], limit: int) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=dict(headers), trust_env=True, follow_redirects=False,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit,
                                keepalive_expiry=4.0))

    async def post(self, path: str, content: bytes, headers: Mapping[str, str] | None = None,
                   *, connect_timeout: float, read_timeout: float) -> Response:
        timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout,
                                write=read_timeout, pool=connect_timeout)
        try:
            answer = await self._client.post(path, content=content, headers=headers,
                                             timeout=timeout)
        except httpx.HTTPError as exc:
            raise TransportError(str(exc)) from exc
        if len(answer.content) > MAX_ANSWER_BYTES:
            raise TransportError("answer too large", stage="answer")
        return Response(answer.status_code, answer.headers, answer.content)

    async def aclose(self) -> None:
        await self._client.aclose()


class _LibraryDelivery(LogDelivery):
    """The product's LogDelivery whose Poster posts through `library` instead of HttpPool."""

    library: ClassVar[type[_AiohttpPool] | type[_HttpxPool]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        poster = self._poster
        # Poster creates its HttpPool on the first post unless one is there already.
        poster._pool = self.library(  # type: ignore[assignment]
            poster._base_url, poster._headers, poster._max_connections)


class _AiohttpDelivery(_LibraryDelivery):
    library = _AiohttpPool


class _HttpxDelivery(_LibraryDelivery):
    library = _HttpxPool


RATIO_VARIANTS = ("bare", "traced-httppool", "traced-aiohttp", "traced-httpx")
_DELIVERIES: dict[str, type[LogDelivery]] = {
    "traced-httppool": LogDelivery, "traced-aiohttp": _AiohttpDelivery,
    "traced-httpx": _HttpxDelivery}


def _register_variants() -> None:
    """Add the three traced variants to bench.apps.APPS (in the child process only)."""
    from app.service import _reliability
    from bench.apps import APPS, traced_app

    def variant(delivery: type[LogDelivery]) -> Callable[[Any], Any]:
        def build(settings: Any) -> Any:
            # bench.inprocess enters each app's lifespan right after building it, and the
            # lifespan builds the delivery from this name: each app gets its own class.
            _reliability.LogDelivery = delivery  # type: ignore[attr-defined]
            return traced_app(settings)
        return build

    for name, delivery in _DELIVERIES.items():
        APPS[name] = variant(delivery)


def run_ratio(work: Path, *, rounds: int, requests: int, concurrency: int = 32,
              variants: tuple[str, ...] = RATIO_VARIANTS) -> list[str]:
    """Traced ÷ bare per client, no batches, one child process; report lines."""
    with running_backend("ratio-backend", work) as (backend, _), \
            (work / "ratio.log").open("wb") as log:
        seed(backend.url)
        env = {**app_env(backend_url=backend.url, data_dir=work / "ratio-data"),
               "PROMPTSERVE_DELIVERY_BATCH_MAX": "1"}
        out = subprocess.run(
            [sys.executable, "-m", "bench.clients", "--child", "--rounds", str(rounds),
             "--requests", str(requests), "--concurrency", str(concurrency), *variants],
            env=env, stdout=subprocess.PIPE, stderr=log, check=True)
    per_request: dict[str, list[float]] = json.loads(out.stdout.splitlines()[-1])
    bare = per_request["bare"]
    ratios = {v: [b / t for b, t in zip(bare, times, strict=True)]
              for v, times in per_request.items()}
    lines = [f"traced ÷ bare, no batches (the hosted case), one process, {rounds} rounds of "
             f"{requests} /example/invoke, {concurrency} in flight; median [quartiles]"]
    ours = ratios.get("traced-httppool")
    for variant, times in per_request.items():
        line = f"  {variant:16s} {quartile_spread(times)} ms  bare ÷ this " \
               f"{quartile_spread(ratios[variant])}"
        if ours is not None and variant not in ("bare", "traced-httppool"):
            points = [100 * (o - r) for o, r in zip(ours, ratios[variant], strict=True)]
            line += f"  costs {quartile_spread(points, '{:.1f}')} points " \
                    f"[min–max {min(points):.1f}–{max(points):.1f}]"
        lines.append(line)
    return lines


def main() -> None:
    """`ratio` (the hosted case, default) or `cost` (bare clients, as `bench.run --only
    clients`); `--child` is the timed process of `ratio`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", default="ratio",
                        help="ratio | cost (or, with --child, variants)")
    parser.add_argument("variants", nargs="*")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--posts", type=int, default=600, help="cost: posts per round")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from bench.inprocess import _child

        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {0})  # the backend and the parent keep the other CPUs
        _register_variants()
        variants = [args.part, *args.variants]
        result = asyncio.run(_child(variants, args.rounds, args.requests, args.concurrency))
        sys.stdout.write("\n" + json.dumps(result) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="promptserve-clients-") as work:
        if args.part == "cost":
            lines = run_clients(Path(work), n=args.posts, rounds=args.rounds).lines()
        else:
            lines = run_ratio(Path(work), rounds=args.rounds, requests=args.requests,
                              concurrency=args.concurrency, variants=tuple(args.variants)
                              or RATIO_VARIANTS)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
