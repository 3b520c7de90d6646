"""Run the benchmarks of PRODUCT.md's targets: `make bench` or `python -m bench.run`.

Parts (all by default; `--only PART`, repeatable):
  ingest    /log-request storing ÷ not storing, SQLite and PostgreSQL (wrk)
  overhead  traced /example/invoke ÷ bare LangServe, SDK references (wrk)
  together  the same ratio with bare and the variant loaded at once on one CPU
  critique  the same on /critique: two calls logged per answer, bare serving both calls too
  release   traced /example on a split label ÷ on a plain label, loaded at once
  latency   first streamed chunk, last chunk → id event, 50 ms proxy
  profile   where the traced service spends its time (py-spy)
  clients   delivery HTTP client cost per log: ours (HttpPool) vs aiohttp vs httpx
  instructions  CPU instructions per invoke, callgrind (valgrind), noise-free (bench.instructions)
  inprocess CPU time per invoke, all variants in one process, paired rounds (bench.inprocess)
  handler   a script's sequential ChatOpenAI.invoke: our handler vs none, sync SDK, community
`--quick` (~5 min, 1.5 of them under callgrind) runs every part but `profile` with 2 short
rounds and without the SDK references: a smoke test, not figures to quote. Every comparison
runs its variants in the same run, alternating, because the machine (2 cores) is shared and
noisy.
`--pin` runs `overhead` with the server under test alone on CPU 0 (wrk and the backend on
CPU 1; bench.overhead says why); `--rounds N` overrides the plan's rounds (overhead, ingest,
together, critique, handler).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench._fleet import VARIANTS
from bench.clients import run_clients
from bench.handler import run_handler
from bench.ingest import run_ingest
from bench.inprocess import run_inprocess
from bench.instructions import run_instructions
from bench.latency import run_latency
from bench.overhead import run_overhead
from bench.profile import run_profile
from bench.release import run_release
from bench.together import run_together

PARTS = ("ingest", "overhead", "together", "critique", "release", "latency", "profile",
         "clients", "instructions", "inprocess", "handler")
ANALYSIS = ("bare-handler", "traced-nohttp", "traced-aiohttp")


@dataclass(frozen=True)
class Plan:
    """How long each part runs."""

    rounds: int
    seconds: int
    overhead_seconds: int
    samples: int
    proxied: int
    profile_seconds: float
    client_posts: int
    client_rounds: int
    counted_requests: int = 300
    inprocess_rounds: int = 20
    inprocess_requests: int = 1000
    # One-at-a-time overhead rounds: many and short, as a core's speed moves by ±30% from one
    # few-second spell to the next on the shared VM (24 rounds of 3 s agree with `together`,
    # 4–16 rounds of 8 s do not: `--rounds 24` for a figure to quote).
    overhead_rounds: int = 12
    together_rounds: int = 6
    together_seconds: int = 8
    handler_rounds: int = 5
    handler_calls: int = 200
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    variants: tuple[str, ...] = VARIANTS + ANALYSIS
    pin: bool = False


FULL = Plan(rounds=3, seconds=10, overhead_seconds=3, samples=200, proxied=40, profile_seconds=10,
            client_posts=600, client_rounds=3)
QUICK = Plan(rounds=2, seconds=2, overhead_seconds=2, samples=20, proxied=5, profile_seconds=3,
             client_posts=150, client_rounds=1, counted_requests=50,
             inprocess_rounds=2, inprocess_requests=200, overhead_rounds=2, together_rounds=1,
             together_seconds=2, handler_rounds=2, handler_calls=30,
             variants=("bare", "traced", "embedded"))


def _parts(plan: Plan, work: Path) -> dict[str, Callable[[], list[str]]]:
    def ingest() -> list[str]:
        lines: list[str] = []
        for db in plan.databases:
            lines += run_ingest(work, database=db, rounds=plan.rounds,
                                seconds=plan.seconds).lines()
        return lines

    def profile() -> list[str]:
        return [line for r in run_profile(work, seconds=plan.profile_seconds)
                for line in r.lines()]

    return {
        "ingest": ingest,
        "overhead": lambda: run_overhead(work, rounds=plan.overhead_rounds,
                                         seconds=plan.overhead_seconds, names=plan.variants,
                                         pin=plan.pin).lines(),
        "together": lambda: run_together(work, rounds=plan.together_rounds,
                                         seconds=plan.together_seconds).lines(),
        "critique": lambda: run_together(work, rounds=plan.together_rounds,
                                         seconds=plan.together_seconds,
                                         chain="critique").lines(),
        "release": lambda: run_release(work, rounds=plan.together_rounds,
                                       seconds=plan.together_seconds).lines(),
        "latency": lambda: run_latency(work, samples=plan.samples,
                                       proxied_samples=plan.proxied).lines(),
        "profile": profile,
        "clients": lambda: run_clients(work, n=plan.client_posts,
                                       rounds=plan.client_rounds).lines(),
        "instructions": lambda: run_instructions(work, requests=plan.counted_requests),
        "inprocess": lambda: run_inprocess(work, rounds=plan.inprocess_rounds,
                                           requests=plan.inprocess_requests),
        "handler": lambda: run_handler(work, rounds=plan.handler_rounds,
                                       calls=plan.handler_calls, pin=plan.pin).lines(),
    }


def main() -> None:
    """Run the chosen parts, print each report as it completes (and to --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only this part (repeatable)")
    parser.add_argument("--quick", action="store_true", help="short smoke run (~5 min)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--pin", action="store_true",
                        help="overhead: server under test on CPU 0, wrk and backend on CPU 1")
    parser.add_argument("--rounds", type=int,
                        help="overhead/ingest/together/critique/handler rounds "
                             "(default: the plan's)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = dataclasses.replace(plan, pin=args.pin, rounds=args.rounds or plan.rounds,
                               overhead_rounds=args.rounds or plan.overhead_rounds,
                               together_rounds=args.rounds or plan.together_rounds,
                               handler_rounds=args.rounds or plan.handler_rounds)
    chosen = args.only or [p for p in PARTS if not (args.quick and p == "profile")]
    header = [f"promptserve bench ({'quick' if args.quick else 'full'}) "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, parts: {', '.join(chosen)}"]
    print(header[0], flush=True)
    report = header
    work = Path(tempfile.mkdtemp(prefix="promptserve-bench-"))
    try:
        parts = _parts(plan, work)
        for name in chosen:
            started = time.monotonic()
            lines = parts[name]() + [f"  ({name}: {time.monotonic() - started:.0f} s)"]
            print("\n".join(lines), flush=True)
            report += lines
    finally:
        if args.out:
            args.out.write_text("\n".join(report) + "\n")
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)


if __name__ == "__main__":
    main()
