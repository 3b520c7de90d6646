"""CPU time per `/example/invoke` with every variant in one process: the timed counterpart
of bench.instructions.

    .venv/bin/python -m bench.inprocess [--rounds 20] [--requests 1000] [VARIANT ...]

One child process (on CPU 0 alone where there are two) builds each variant's app
(bench.apps; all log to one `promptserve backend` in another process), warms each, freezes
its heap as the served app does, then drives each app's ASGI callable directly
(bench._asgi_load) for `--requests` invocations per round, variants alternating in an order
rotated every round. Per round it reads the process's CPU time. Each variant is reported
as CPU ms per request and as bare ÷ variant from the same round (paired), so a slow spell
of the shared machine moves both sides of a ratio.

Same process, same hash seed, same heap, no HTTP server: its ratios agreed with the
pinned wrk runs of bench.overhead (whose rounds spread far more) at a
quarter of their spread, while bench.instructions' ratio is higher (0.84): our layer's
instructions take about twice as long each as bare LangServe's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging.config
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._asgi_load import IN_PROCESS_VARIANTS, ASGIApp, app_env, drive
from bench._backend import running_backend, seed
from bench._stats import quartile_spread

__all__ = ["main", "run_inprocess"]

_WARM_UP = 500


async def _child(variants: list[str], rounds: int, requests: int, concurrency: int
                 ) -> dict[str, list[float]]:
    """In the child: CPU ms per request of each variant, one figure per round."""
    from app.config import Settings
    from app.heap_freeze import freeze_heap
    from app.observability import log_config
    from bench.apps import APPS

    settings = Settings()
    # As `promptserve serve` logs: our access line per request is part of our cost.
    logging.config.dictConfig(log_config(level=settings.log_level, fmt=settings.log_format))
    per_request: dict[str, list[float]] = {v: [] for v in variants}
    async with contextlib.AsyncExitStack() as stack:
        apps: dict[str, ASGIApp] = {}
        for variant in variants:
            app = APPS[variant](settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            await drive(app, _WARM_UP, concurrency)
            apps[variant] = app
        freeze_heap()
        for r in range(rounds):
            for variant in variants[r % len(variants):] + variants[: r % len(variants)]:
                started = time.process_time()
                await drive(apps[variant], requests, concurrency)
                per_request[variant].append((time.process_time() - started) * 1000 / requests)
    return per_request


def run_inprocess(
    work: Path, variants: tuple[str, ...] = IN_PROCESS_VARIANTS, *, rounds: int = 20,
    requests: int = 1000, concurrency: int = 32,
) -> list[str]:
    """Time every variant in one child process; report lines (median [quartiles])."""
    with running_backend("inprocess-backend", work) as (backend, _), \
            (work / "inprocess.log").open("wb") as log:  # the access lines
        seed(backend.url)
        out = subprocess.run(
            [sys.executable, "-m", "bench.inprocess", "--child", *variants,
             "--rounds", str(rounds), "--requests", str(requests),
             "--concurrency", str(concurrency)],
            env=app_env(backend_url=backend.url, data_dir=work / "inprocess-data"),
            stdout=subprocess.PIPE, stderr=log, check=True,
        )
    per_request: dict[str, list[float]] = json.loads(out.stdout.splitlines()[-1])
    lines = [f"CPU per /example/invoke, all variants in one process ({rounds} rounds of "
             f"{requests} requests, {concurrency} in flight; median [quartiles])"]
    bare = per_request.get("bare")
    for variant, times in per_request.items():
        ratios = [b / t for b, t in zip(bare, times, strict=True)] if bare else []
        paired = f"  bare ÷ this {quartile_spread(ratios)}" if ratios else ""
        lines.append(f"  {variant:14s} {quartile_spread(times)} ms{paired}")
    return lines


def main() -> None:
    """Parse arguments; time the variants, or (--child) be the timed process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=list(IN_PROCESS_VARIANTS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {0})  # the backend and the parent keep the other CPUs
        result: Any = asyncio.run(_child(args.variants, args.rounds, args.requests,
                                         args.concurrency))
        sys.stdout.write("\n" + json.dumps(result) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="promptserve-inprocess-") as work:
        for line in run_inprocess(Path(work), tuple(args.variants), rounds=args.rounds,
                                  requests=args.requests, concurrency=args.concurrency):
            print(line)


if __name__ == "__main__":
    main()
