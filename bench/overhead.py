"""Throughput of traced /example/invoke ÷ bare LangServe, 32 connections.

All variants (bench._fleet) serve the same chain with the same fake model, each in its
own process, and are loaded in the same run, one at a time, in an order rotated every
round. Every variant runs the same wrk script, whose `response()` hook counts answers
carrying an int `promptlayer_request_id`. Around each round the rows in the database the
variant logs to are counted, so "every request logged and its id returned" is checked,
not assumed: with-id answers = completed requests, stored rows ≥ completed requests (at
most 32 more: requests in flight when wrk stopped are still served and logged).

`pin=True` (`bench.run --pin`) gives the server under test CPU 0 to itself and puts wrk
and the shared backend on CPU 1, as if PromptLayer and the clients ran elsewhere: on two
cores, unpinned, a traced server competes with its backend and wrk for CPU that bare
LangServe has to itself, so the unpinned ratio also measures co-location.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._backend import settle
from bench._bodies import INVOKE_BODY
from bench._fleet import VARIANTS, Variant, fleet
from bench._procs import Server, cpu_seconds
from bench._stats import median, spread
from bench._wrk import WrkResult, post_script, run_wrk

__all__ = ["OverheadResult", "Totals", "pinned", "run_overhead"]

TARGET = 0.85
_CONNECTIONS = 32
_METRIC = re.compile(r"^(promptserve_\w+) ([0-9.e+]+)$", re.MULTILINE)


@dataclass
class Totals:
    """One variant's answers over its rounds, and what its database stored."""

    completed: int = 0
    with_id: int = 0
    stored: int = 0
    errors: int = 0
    max_over: int = 0  # most rows stored beyond `logs_per_answer` per answer in one round
    logs_per_answer: int = 1  # model calls per run: each one is a stored row

    def add(self, out: WrkResult, stored: int) -> None:
        """Count one round: wrk's answers and the rows stored meanwhile."""
        self.completed += out.requests
        self.with_id += out.extra.get("with_id", 0)
        self.stored += stored
        self.errors += out.non_2xx + out.socket_errors
        self.max_over = max(self.max_over, stored - out.requests * self.logs_per_answer)

    def logged_ok(self) -> bool:
        """Every completed request answered with its ids and all its calls stored (at most
        the requests in flight when wrk stopped stored beyond them), no errors."""
        return (self.with_id == self.completed
                and self.completed * self.logs_per_answer <= self.stored
                and self.errors == 0 and self.max_over <= _CONNECTIONS * self.logs_per_answer)

    def line(self) -> str:
        """completed, with ids, stored (per answer when a run logs several calls), errors."""
        per = (f" = {self.stored / self.completed:.3f} per answer"
               if self.logs_per_answer > 1 and self.completed else "")
        ids = "with id" if self.logs_per_answer == 1 else f"with {self.logs_per_answer} ids"
        return (f"completed {self.completed}, {ids} {self.with_id}, stored {self.stored}{per} "
                f"(max +{self.max_over}/round), errors {self.errors}")


@dataclass
class OverheadResult:
    """Per-variant rounds."""

    pinned: bool = False
    rps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    p50: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # CPU ms per completed request: the variant's process, and the shared backend's.
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    backend_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    totals: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    # promptserve variants: logs delivered per post (batches), from their /metrics at the end.
    logs_per_post: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable report."""
        out = [f"invoke throughput, {_CONNECTIONS} connections, "
               f"{len(self.rps['bare'])} rounds (req/s median [min–max])"
               + (", pinned: server CPU 0, wrk + backend CPU 1" if self.pinned else "")]
        for name in self.rps:
            t = self.totals[name]
            ratio = f"  ÷ bare {spread(self.ratios[name])}" if name != "bare" else ""
            out.append(f"  {name:<10} {spread(self.rps[name], '{:.0f}'):>18} req/s  "
                       f"p50 {spread(self.p50[name], '{:.1f}')} ms{ratio}")
            out.append(f"  {'':<10} CPU/request: server {spread(self.cpu_ms[name])} ms, "
                       f"backend {spread(self.backend_cpu_ms[name])} ms")
            out.append(f"  {'':<10} {t.line()}")
            if name in self.logs_per_post:
                out.append(f"  {'':<10} logs per delivery post: {self.logs_per_post[name]:.1f}")
        for name in ("traced", "embedded"):
            if name in self.ratios:
                met = median(self.ratios[name]) >= TARGET and self.totals[name].logged_ok()
                out.append(f"  target {name} ÷ bare ≥ {TARGET}, every request logged with "
                           f"its id: {'met' if met else 'NOT met'}")
        return out


@dataclass
class _Round:
    out: WrkResult
    stored: int
    cpu_ms: float
    backend_cpu_ms: float


def _round(variant: Variant, backend: Server, script: Path, seconds: float) -> _Round:
    before = settle(variant.db) if variant.db else 0
    cpu = cpu_seconds(variant.server.pid), cpu_seconds(backend.pid)
    out = run_wrk(variant.server.url + "/example/invoke", script, seconds=seconds,
                  connections=_CONNECTIONS)
    stored = settle(variant.db) - before if variant.db else 0
    # After settling: the CPU spent on requests that were in flight when wrk stopped counts
    # too, so per-request figures divide by what was served, not only by wrk's count.
    served = max(out.requests, stored)
    used = cpu_seconds(variant.server.pid) - cpu[0], cpu_seconds(backend.pid) - cpu[1]
    return _Round(out, stored, used[0] * 1000 / served, used[1] * 1000 / served)


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` onto `cpus` (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def pinned(servers: list[Server], backend: Server) -> Iterator[None]:
    """Servers on CPU 0; the backend and this process (so wrk) on CPU 1; undone after."""
    mine = os.sched_getaffinity(0)
    for server in servers:
        _pin(server.pid, {0})
    _pin(backend.pid, {1})
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


def run_overhead(
    work: Path, *, rounds: int, seconds: float, names: tuple[str, ...] = VARIANTS,
    pin: bool = False,
) -> OverheadResult:
    """Run every variant `rounds` times for `seconds` each (`pin`: see the module doc)."""
    result = OverheadResult(pinned=pin)
    script = post_script(work / "invoke.lua", body=INVOKE_BODY, headers={}, count_ids=True)
    with fleet(work, names) as (backend, variants), contextlib.ExitStack() as stack:
        if pin:
            stack.enter_context(pinned([v.server for v in variants.values()], backend))
        for variant in variants.values():
            run_wrk(variant.server.url + "/example/invoke", script, seconds=min(2.0, seconds))
        order = list(names)
        for r in range(rounds):
            rotated = order[r % len(order):] + order[: r % len(order)]
            rps: dict[str, float] = {}
            for name in rotated:
                done = _round(variants[name], backend, script, seconds)
                out, stored = done.out, done.stored
                rps[name] = out.rps
                result.cpu_ms[name].append(done.cpu_ms)
                result.backend_cpu_ms[name].append(done.backend_cpu_ms)
                result.rps[name].append(out.rps)
                result.p50[name].append(out.p50_ms)
                result.totals[name].add(out, stored)
            for name in names:
                if name != "bare":
                    result.ratios[name].append(rps[name] / rps["bare"])
        for name, variant in variants.items():
            if (per_post := _logs_per_post(variant.server)) is not None:
                result.logs_per_post[name] = per_post
    return result


def _logs_per_post(server: Server) -> float | None:
    """Delivered logs ÷ posts that carried them, from a promptserve server's /metrics."""
    try:
        text = httpx.get(server.url + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    figures = dict(_METRIC.findall(text))
    posts = float(figures.get("promptserve_delivery_log_posts_total", 0))
    delivered = float(figures.get("promptserve_logs_delivered_total", 0))
    return delivered / posts if posts else None
