"""Sustained POST /log-request ingest, storing ÷ answering without storing.

Two servers over the same database, both up for the whole run, loaded in alternating
rounds (order flipped every round) by wrk with 32 connections:
- `store`: the real CLI, `python -m app.cli backend`;
- `nostore`: the same backend app with the store's write replaced by a fake id
  (bench.apps.nostore_backend_app).
The body is what our tracer sends (bench._bodies.log_body), with the X-API-KEY header.
After each `store` round the stored rows are counted: wrk's completed requests must all be
there (at most 32 more: requests in flight when wrk stopped).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench._backend import API_KEY, postgres_database, running_backend, seed, settle
from bench._bodies import log_body
from bench._procs import cpu_seconds, cpu_seconds_of
from bench._stats import median, spread
from bench._wrk import post_script, run_wrk

__all__ = ["IngestResult", "run_ingest"]

TARGET = 0.7


@dataclass
class IngestResult:
    """Rounds of one database."""

    database: str
    store_rps: list[float] = field(default_factory=list)
    nostore_rps: list[float] = field(default_factory=list)
    store_p50: list[float] = field(default_factory=list)
    nostore_p50: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    # CPU ms per request: the backend process, and PostgreSQL's server processes.
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    db_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    completed: int = 0
    stored: int = 0
    errors: int = 0

    def lines(self) -> list[str]:
        """Human-readable report."""
        met = "met" if median(self.ratios) >= TARGET else "NOT met"
        return [
            f"ingest on {self.database}: {len(self.ratios)} rounds",
            f"  store    req/s {spread(self.store_rps, '{:.0f}')}  "
            f"p50 {spread(self.store_p50, '{:.1f}')} ms",
            f"  nostore  req/s {spread(self.nostore_rps, '{:.0f}')}  "
            f"p50 {spread(self.nostore_p50, '{:.1f}')} ms",
            f"  CPU/request: store {spread(self.cpu_ms['store'])} ms + database server "
            f"{spread(self.db_cpu_ms['store'])} ms; nostore {spread(self.cpu_ms['nostore'])} "
            f"ms + {spread(self.db_cpu_ms['nostore'])} ms",
            f"  ratio store/nostore {spread(self.ratios)}  (target ≥ {TARGET}: {met})",
            f"  stored {self.stored} rows for {self.completed} completed requests; "
            f"errors (non-2xx + socket) {self.errors}",
        ]


def run_ingest(work: Path, *, database: str, rounds: int, seconds: float) -> IngestResult:
    """Measure one database ('sqlite' or 'postgresql')."""
    result = IngestResult(database)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if database == "postgresql" else None
        data_dir = work / f"ingest-{database}"
        store, db = stack.enter_context(
            running_backend(f"ingest-{database}-store", work, database_url=url,
                            data_dir=data_dir))
        prompt_id = seed(store.url)
        nostore, _ = stack.enter_context(
            running_backend(f"ingest-{database}-nostore", work, database_url=url,
                            module="bench.serve", kind="backend-nostore", data_dir=data_dir))
        script = post_script(work / "ingest.lua", body=log_body(prompt_id=prompt_id),
                             headers={"X-API-KEY": API_KEY}, count_ids=False)
        servers = {"store": store, "nostore": nostore}
        targets = {name: s.url + "/log-request" for name, s in servers.items()}
        for url_ in targets.values():
            run_wrk(url_, script, seconds=min(2.0, seconds))  # warm-up
        for r in range(rounds):
            order = ["store", "nostore"] if r % 2 == 0 else ["nostore", "store"]
            rps: dict[str, float] = {}
            for name in order:
                before = settle(db) if name == "store" else 0
                pid = servers[name].pid
                cpu = cpu_seconds(pid), cpu_seconds_of("postgres")
                out = run_wrk(targets[name], script, seconds=seconds)
                rps[name] = out.rps
                result.errors += out.non_2xx + out.socket_errors
                getattr(result, f"{name}_p50").append(out.p50_ms)
                served = out.requests
                if name == "store":
                    stored = settle(db) - before
                    result.completed += out.requests
                    result.stored += stored
                    served = max(served, stored)
                result.cpu_ms[name].append((cpu_seconds(pid) - cpu[0]) * 1000 / served)
                result.db_cpu_ms[name].append(
                    (cpu_seconds_of("postgres") - cpu[1]) * 1000 / served)
            result.store_rps.append(rps["store"])
            result.nostore_rps.append(rps["nostore"])
            result.ratios.append(rps["store"] / rps["nostore"])
    return result
