"""Memory growth of the service: RSS after 50k requests ÷ RSS after 10k (target ≤ 1.05).

The service runs as `python -m app.cli serve` in a child process (embedded backend included,
so its store and delivery are part of the figure); the fake OpenAI server runs in this
process. Load: C concurrent clients POSTing /example/invoke. RSS is read from /proc.

Run: .venv/bin/python bench/memory_growth.py [--total 50000] [--mark 10000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.integration.service.conftest import write_templates  # noqa: E402
from tests.utils.fake_openai import FakeOpenAI  # noqa: E402
from tests.utils.servers import free_port, serve_in_process, serve_in_thread  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def drive(url: str, count: int, concurrency: int, start: int) -> int:
    """Send `count` invokes with `concurrency` in flight; return how many failed."""
    failures = 0
    next_index = start

    async def client_loop() -> None:
        nonlocal failures, next_index
        async with httpx.AsyncClient(timeout=60) as client:
            while next_index < start + count:
                i = next_index
                next_index += 1
                response = await client.post(f"{url}/example/invoke",
                                             json={"input": {"product": f"item {i}"}})
                failures += response.status_code != 200

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=50_000)
    parser.add_argument("--mark", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    fake = FakeOpenAI()
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(fake.app) as llm_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"OPENAI_BASE_URL": f"{llm_url}/v1", "OPENAI_API_KEY": "sk-bench",
               "PROMPTLAYER_API_KEY": "bench-backend-key", "PROMPTSERVE_DATA_DIR": tmp,
               "PROMPTSERVE_TEMPLATES_DIR": str(write_templates(Path(tmp) / "templates")),
               "HOST": "127.0.0.1", "PORT": str(port)}
        with serve_in_process(["serve"], env=env, health_url=f"{url}/readyz",
                              cwd=Path(tmp)) as proc:
            started = time.monotonic()
            failures = asyncio.run(drive(url, args.mark, args.concurrency, 0))
            at_mark = rss_mib(proc.pid)
            failures += asyncio.run(drive(url, args.total - args.mark, args.concurrency,
                                          args.mark))
            at_total = rss_mib(proc.pid)
            seconds = time.monotonic() - started
        fake.requests.clear()
    print(json.dumps({
        "requests": args.total, "failures": failures, "seconds": round(seconds, 1),
        f"rss_mib_after_{args.mark}": round(at_mark, 1),
        f"rss_mib_after_{args.total}": round(at_total, 1),
        "ratio": round(at_total / at_mark, 3),
    }))


if __name__ == "__main__":
    main()
