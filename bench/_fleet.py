"""The servers of the traced ÷ bare comparisons, each in its own process, all up at once.

- a `promptserve backend` (the real CLI) that every remote-mode variant logs to;
- `bare`, `bare-handler`, `ref-sync`, `ref-async`: LangServe variants (bench.apps), template
  from that backend (`bare-2`: a second bare server, bench.together's control); `kinds`
  serves another chain under those names (`bare-critique`);
- `traced`: promptserve, logs to that backend (PROMPTLAYER_BASE_URL);
- `embedded`: promptserve with its embedded backend (in-process, its own SQLite file).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._backend import Database, backend_env, running_backend, seed, sqlalchemy_url
from bench._procs import ROOT, Server, free_port, spawn

__all__ = ["VARIANTS", "Variant", "fleet", "start_variant"]

VARIANTS = ("bare", "traced", "embedded", "ref-sync", "ref-async")
_KIND = {"bare": "bare", "bare-2": "bare", "bare-handler": "bare-handler", "traced": "traced",
         "embedded": "traced",
         "ref-sync": "ref-sync", "ref-async": "ref-async",
         "traced-nohttp": "traced-nohttp", "traced-aiohttp": "traced-aiohttp"}
# Where a bare kind answers once it is up (the traced ones: /healthz); default /example's.
_HEALTH = {"bare-critique": "/critique/input_schema"}


@dataclass(frozen=True)
class Variant:
    """One server under test and the database its logs land in (None: it logs nothing)."""

    name: str
    server: Server
    db: Database | None


@contextlib.contextmanager
def start_variant(
    name: str, work: Path, *, backend_url: str | None, backend_db: Database | None,
    kind: str | None = None, root: Path = ROOT, python_args: tuple[str, ...] = ("-m",),
) -> Iterator[Variant]:
    """Start variant `name`; `backend_url=None` means embedded mode (own database).

    `root` and `python_args` as for `spawn` (another checkout; a launcher instead of `-m`).
    """
    data_dir = work / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = backend_env(data_dir)
    if backend_url is not None:
        env["PROMPTLAYER_BASE_URL"] = backend_url
    kind = kind or _KIND[name]
    health = "/healthz" if kind.startswith("traced") else \
        _HEALTH.get(kind, "/example/input_schema")
    port = free_port()
    with spawn(name, ["bench.serve", kind, "--port", str(port)], env=env, port=port,
               log_dir=work, health_path=health, root=root, python_args=python_args) as server:
        if backend_url is None:
            db = Database(sqlalchemy_url(data_dir, None))
            try:
                yield Variant(name, server, db)
            finally:
                db.dispose()
        else:
            logs = kind not in ("bare", "bare-critique", "bare-handler", "traced-nohttp")
            yield Variant(name, server, backend_db if logs else None)


@contextlib.contextmanager
def fleet(
    work: Path, names: Sequence[str] = VARIANTS, kinds: Mapping[str, str] | None = None,
) -> Iterator[tuple[Server, dict[str, Variant]]]:
    """The backend and the variants `names` (`kinds`: the app a name serves, instead of its
    usual one), torn down in reverse order."""
    with contextlib.ExitStack() as stack:
        backend, backend_db = stack.enter_context(running_backend("fleet-backend", work))
        seed(backend.url)
        variants: dict[str, Variant] = {}
        for name in names:
            url = None if name == "embedded" else backend.url
            variants[name] = stack.enter_context(
                start_variant(name, work, backend_url=url, backend_db=backend_db,
                              kind=(kinds or {}).get(name)))
        yield backend, variants
