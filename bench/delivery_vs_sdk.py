"""Cost of one /log-request: pooled `LogDelivery` vs the SDK's `AsyncPromptLayer.log_request`.

The SDK's async client opens (and closes) a new httpx client, hence a new TCP connection,
for every call. This measures both against the embedded backend running in a child process
(so server work does not share our GIL):
- sequential: one log at a time, latency per log (p50/p95);
- concurrent: N logs with C in flight at once, logs per second.

Run: .venv/bin/python bench/delivery_vs_sdk.py [--n 500] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptlayer import AsyncPromptLayer  # noqa: E402

from promptserve.tracing import LogDelivery  # noqa: E402
from tests.utils.servers import free_port, serve_in_process  # noqa: E402

API_KEY = "bench-key"


def _body(i: int) -> dict[str, Any]:
    now = time.time()
    chat = {
        "type": "chat",
        "input_variables": [],
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"question {i}"}]}],
    }
    answer = {
        "type": "chat",
        "input_variables": [],
        "messages": [{"role": "assistant", "content": [{"type": "text", "text": f"answer {i}"}]}],
    }
    return {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": chat,
        "output": answer,
        "request_start_time": now - 0.2,
        "request_end_time": now,
        "parameters": {},
        "tags": ["bench"],
        "metadata": {"i": str(i)},
        "prompt_name": None,
        "prompt_version_number": None,
        "prompt_input_variables": {},
        "input_tokens": 3,
        "output_tokens": 2,
        "price": 0.0,
        "function_name": "bench",
        "score": 0,
        "prompt_id": None,
        "status": "SUCCESS",
        "error_type": None,
        "error_message": None,
    }


Send = Callable[[int], Awaitable[Any]]


async def _sequential(send: Send, n: int) -> tuple[list[float], float]:
    """Wall ms per log, and this process's CPU ms per log (event-loop cost in the app)."""
    times = []
    cpu = time.process_time()
    for i in range(n):
        started = time.perf_counter()
        await send(i)
        times.append((time.perf_counter() - started) * 1000)
    return times, (time.process_time() - cpu) * 1000 / n


async def _concurrent(send: Send, n: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await send(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


def _report(name: str, times: list[float], cpu_ms: float, rate: float) -> None:
    q = statistics.quantiles(times, n=20)
    print(
        f"{name:<22} p50 {statistics.median(times):6.2f} ms  p95 {q[18]:6.2f} ms  "
        f"client CPU {cpu_ms:5.2f} ms/log  concurrent {rate:5.0f} logs/s"
    )


async def _run(url: str, n: int, concurrency: int) -> None:
    delivery = LogDelivery(base_url=url, api_key=API_KEY)
    sdk = AsyncPromptLayer(api_key=API_KEY, base_url=url)

    async def ours(i: int) -> None:
        assert await delivery.submit(_body(i), idempotency_key=f"bench-{time.time_ns()}-{i}")

    async def theirs(i: int) -> None:
        assert (await sdk.log_request(**_body(i)))["id"]

    for name, send in (("LogDelivery (pooled)", ours), ("SDK AsyncPromptLayer", theirs)):
        await _sequential(send, 20)  # warm-up: imports, first connections, SQLite cache
        times, cpu_ms = await _sequential(send, n)
        rate = await _concurrent(send, n, concurrency)
        _report(name, times, cpu_ms, rate)
    await delivery.aclose()


def main() -> None:
    """Start the embedded backend, measure both clients, print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "PROMPTLAYER_API_KEY": API_KEY,
            "PROMPTSERVE_DATA_DIR": data_dir,
            "PORT": str(port),
            "HOST": "127.0.0.1",
        }
        url = f"http://127.0.0.1:{port}"
        with serve_in_process(["backend"], env=env, health_url=f"{url}/healthz"):
            print(f"{args.n} logs each; concurrent run with {args.concurrency} in flight")
            asyncio.run(_run(url, args.n, args.concurrency))


if __name__ == "__main__":
    main()
