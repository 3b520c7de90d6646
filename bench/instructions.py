"""CPU instructions per `/example/invoke`, counted by callgrind: our layer's cost, without noise.

    .venv/bin/python -m bench.instructions [--requests 300] [--concurrency 32] [VARIANT ...]

Timed runs on this shared VM move by ±10% between identical server processes (BENCHMARKS.md,
"Method"), more than most single changes to our layer. Instruction counts do not:
each variant's app (bench.apps, the fake chat model, logs to a `promptserve backend` in
another process) runs in-process under valgrind's callgrind, its ASGI callable driven
directly with `--concurrency` requests in flight; counting is on only while the measured
requests run, after a warm-up and the served app's heap freeze (`app.heap_freeze`). Repeat
runs agree to 0.3%. What they leave out: the HTTP server (uvicorn, the same for every
variant), the kernel's share, and effects of timing (in callgrind the app runs ~50× slower,
so a log's answer is back almost at once, unlike a live server's). Nor are instructions
time: in-process, timed, our layer's instructions cost about twice as much time each as
bare LangServe's (BENCHMARKS.md, "Traced ÷ bare, `/example`"), so the instruction ratio is above
the timed one. Needs valgrind (Debian package).
"""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._asgi_load import IN_PROCESS_VARIANTS, app_env, drive
from bench._backend import running_backend, seed

__all__ = ["count_instructions", "main"]

_WARM_UP = 200


def _callgrind(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, capture_output=True)


async def _child(variant: str, requests: int, concurrency: int) -> None:
    """In the valgrind process: build the app, warm it, count `requests` invocations."""
    from app.config import Settings
    from app.heap_freeze import freeze_heap
    from app.observability import log_config
    from bench.apps import APPS

    settings = Settings()
    # As `promptserve serve` logs: our access line per request is part of our cost.
    logging.config.dictConfig(log_config(level=settings.log_level, fmt=settings.log_format))
    app = APPS[variant](settings)
    async with app.router.lifespan_context(app):
        await drive(app, _WARM_UP, concurrency)
        freeze_heap()  # as the served app does once started
        _callgrind(True)
        await drive(app, requests, concurrency)
        _callgrind(False)


def count_instructions(
    variant: str, *, backend_url: str, requests: int, concurrency: int, work: Path
) -> float:
    """Instructions per request of `variant` (callgrind's total over `requests`)."""
    out = work / f"callgrind.{variant}.out"
    env = app_env(backend_url=backend_url, data_dir=work / f"{variant}-data")
    with (work / f"{variant}.log").open("wb") as log:
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, "-m", "bench.instructions",
             "--child", variant, "--requests", str(requests),
             "--concurrency", str(concurrency)],
            env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1]) / requests
    raise RuntimeError(f"no totals in {out}")


def run_instructions(
    work: Path, variants: tuple[str, ...] = IN_PROCESS_VARIANTS, *, requests: int = 300,
    concurrency: int = 32,
) -> list[str]:
    """Count every variant (two at a time: one per core); report lines."""
    with running_backend("instructions-backend", work) as (backend, _):
        seed(backend.url)
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = dict(zip(variants, pool.map(
                lambda v: count_instructions(v, backend_url=backend.url, requests=requests,
                                             concurrency=concurrency, work=work),
                variants), strict=True))
    lines = [f"instructions per /example/invoke (callgrind, in-process, {requests} requests, "
             f"{concurrency} in flight)"]
    bare = counts.get("bare")
    for variant, count in counts.items():
        ratio = f"  bare ÷ this {bare / count:.3f}" if bare else ""
        lines.append(f"  {variant:14s} {count / 1e6:6.3f} M{ratio}")
    return lines


def main() -> None:
    """Parse arguments; count each variant, or (--child) be the counted process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=list(IN_PROCESS_VARIANTS))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, args.requests, args.concurrency))
        return
    with tempfile.TemporaryDirectory(prefix="promptserve-instructions-") as work:
        for line in run_instructions(Path(work), tuple(args.variants), requests=args.requests,
                                     concurrency=args.concurrency):
            print(line)


if __name__ == "__main__":
    main()
