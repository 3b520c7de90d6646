"""Traced ÷ bare with both servers loaded at the same time on one CPU.

bench.overhead loads one server at a time; on this shared VM the speed of a core moves by
±30% from one 6-second round to the next (BENCHMARKS.md, "Method"), so
its per-round ratios spread 0.6–1.1 and a median of 6–16 rounds still moved 0.75–0.91
between runs of the same tree. Here bare LangServe and the variant run side by side: both
on CPU 0, each under its own wrk (32 connections; the wrks and the shared backend on
CPU 1), for the same seconds. While both have work, the kernel gives each half of CPU 0, so
a slow spell slows both alike and the ratio of their throughputs is the ratio of their
costs per request. A variant that waits (for its ids) leaves CPU to bare meanwhile, which
counts against it, more than it would alone.

`bare-2`, a second bare server, is the method's control: how far two identical servers
land from 1.0 is its own error. As in bench.overhead, every answer of a traced variant
must carry its id and every answer must be stored.

`chain="critique"` runs the same comparison on /critique (bench.run's `critique` part): two
model calls per answer, so bare serves the same two-call chain (bench._chains), every
traced answer must carry both request ids and each answer must have stored two rows.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench._backend import settle
from bench._bodies import INVOKE_BODY
from bench._fleet import Variant, fleet
from bench._procs import cpu_seconds
from bench._stats import median, spread
from bench._wrk import WrkResult, post_script, run_wrk
from bench.overhead import TARGET, Totals, pinned

__all__ = ["TARGETS", "TOGETHER_VARIANTS", "Target", "TogetherResult", "run_together"]

TOGETHER_VARIANTS = ("bare-2", "traced", "embedded")
_CONNECTIONS = 32


@dataclass(frozen=True)
class Target:
    """A chain the comparison loads: its invoke path, the bench.apps kind serving it bare,
    and the model calls of one answer (each a log, each an id in the answer)."""

    path: str
    bare_kind: str
    calls: int


TARGETS = {"example": Target("/example/invoke", "bare", 1),
           "critique": Target("/critique/invoke", "bare-critique", 2)}


@dataclass
class TogetherResult:
    """Per variant, one figure per round: its rps ÷ bare's, and bare's CPU per request ÷ its."""

    target: Target = TARGETS["example"]
    ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    bare_rps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # The variant's answers and stored rows; errors include bare's.
    totals: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))

    def lines(self) -> list[str]:
        """Human-readable report."""
        rounds = len(next(iter(self.ratios.values()), []))
        out = [f"{self.target.path} throughput, each variant and bare LangServe at the same "
               f"time on CPU 0 ({_CONNECTIONS} connections each), {rounds} rounds "
               f"(median [min–max])"]
        for name, ratios in self.ratios.items():
            t = self.totals[name]
            out.append(f"  {name:<10} ÷ bare {spread(ratios, '{:.3f}')}  (CPU per request: "
                       f"bare ÷ it {spread(self.cpu_ratios[name], '{:.3f}')}; "
                       f"{spread(self.rps[name], '{:.0f}')} vs bare "
                       f"{spread(self.bare_rps[name], '{:.0f}')} req/s)")
            if name != "bare-2":
                out.append(f"  {'':<10} {t.line()}")
        calls = self.target.calls
        logged = "logged with its id" if calls == 1 else f"logged ({calls} logs) with its ids"
        for name in self.ratios:
            if name != "bare-2":
                met = median(self.ratios[name]) >= TARGET and self.totals[name].logged_ok()
                out.append(f"  target {name} ÷ bare ≥ {TARGET}, every request {logged}: "
                           f"{'met' if met else 'NOT met'}")
        return out


def _both(bare: Variant, other: Variant, path: str, script: Path, seconds: float
          ) -> tuple[WrkResult, WrkResult, float, float]:
    """Load both at once; (bare's, other's) wrk results and CPU seconds used."""
    results: dict[str, WrkResult] = {}

    def load(variant: Variant) -> None:
        results[variant.name] = run_wrk(variant.server.url + path, script,
                                        seconds=seconds, connections=_CONNECTIONS)

    before = cpu_seconds(bare.server.pid), cpu_seconds(other.server.pid)
    threads = [threading.Thread(target=load, args=(v,)) for v in (bare, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = (cpu_seconds(bare.server.pid) - before[0], cpu_seconds(other.server.pid) - before[1])
    return results[bare.name], results[other.name], *used


def run_together(work: Path, *, rounds: int, seconds: float,
                 names: tuple[str, ...] = TOGETHER_VARIANTS,
                 chain: str = "example") -> TogetherResult:
    """`rounds` rounds; in each, every variant of `names` runs beside bare for `seconds`,
    all of them loading `chain` (a key of TARGETS)."""
    target = TARGETS[chain]
    result = TogetherResult(target=target)
    for name in names:
        result.totals[name] = Totals(logs_per_answer=target.calls)
    script = post_script(work / f"{chain}-invoke.lua", body=INVOKE_BODY, headers={},
                         count_ids=True, ids=target.calls)
    # Both bare servers serve the chain under test; the traced ones serve the whole catalog.
    kinds = {"bare": target.bare_kind, "bare-2": target.bare_kind}
    with fleet(work, ("bare", *names), kinds) as (backend, variants), \
            pinned([v.server for v in variants.values()], backend):
        for variant in variants.values():
            run_wrk(variant.server.url + target.path, script, seconds=min(2.0, seconds))
        bare = variants["bare"]
        for _ in range(rounds):
            for name in names:
                other = variants[name]
                before = settle(other.db) if other.db else 0
                bare_out, out, bare_cpu, cpu = _both(bare, other, target.path, script, seconds)
                stored = settle(other.db) - before if other.db else 0
                result.ratios[name].append(out.rps / bare_out.rps)
                # Answers served, in-flight ones included: rows stored ÷ rows per answer.
                served = max(out.requests, stored // target.calls)
                result.cpu_ratios[name].append((bare_cpu / bare_out.requests) / (cpu / served))
                result.rps[name].append(out.rps)
                result.bare_rps[name].append(bare_out.rps)
                result.totals[name].add(out, stored)
                result.totals[name].errors += bare_out.non_2xx + bare_out.socket_errors
    return result
