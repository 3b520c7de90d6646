"""A plain script's cost of logging: N sequential `ChatOpenAI.invoke` calls, per handler.

    .venv/bin/python -m bench.handler [--rounds 5] [--calls 200]

Each variant is a script of its own, a fresh child process (`--variant X`), making
`--calls` sequential `ChatOpenAI(...).invoke("hello")` calls against the fake OpenAI server
(tests.utils.fake_openai, in another process) after a few untimed warm-up calls; it times
its loop and reports it, and its exit (when our handler flushes) is outside the timing:
- `none`: no handler;
- `promptserve`: `promptserve.PromptLayerCallbackHandler`, logging to a `promptserve
  backend` (another process) through the environment, as a script would;
- `sdk-sync`: bench.reference's handler calling the SDK's sync `PromptLayer.log_request` in
  `on_llm_end`, what the community handler set out to do: each call waits for its log;
- `community`: langchain-community's `PromptLayerCallbackHandler`, installed into the venv
  when missing (not a project dependency). It still calls the SDK's old positional
  `promptlayer_api_request`, so it is expected to log nothing; LangChain swallows its error
  into a warning, which the report quotes from the child's stderr.
Variants alternate in an order rotated every round, so a slow spell of the shared machine
hits them all alike. Each round gives per variant its ms per call and none ÷ it (its
throughput relative to no handler, paired within the round). Every run tags its logs with
a tag of its own, so the backend's `request_tags` count what each run stored; the target
is none ÷ promptserve ≥ 0.95 with every call, warm-ups included, stored.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from pydantic import SecretStr

from bench._procs import ROOT, Server, free_port, spawn
from bench._stats import median, spread

# The timed script imports only what its variant needs: the parent's database and backend
# helpers (and promptserve, which bench.reference imports) would otherwise grow every
# script's heap, and with it the garbage collector's passes inside the timed loop.
if TYPE_CHECKING:
    import sqlalchemy as sa

    from bench._backend import Database

__all__ = ["HANDLER_VARIANTS", "TARGET", "HandlerResult", "main", "run_handler"]

HANDLER_VARIANTS = ("none", "promptserve", "sdk-sync", "community")
TARGET = 0.95
COMMUNITY_REQUIREMENT = "langchain-community==0.4.2"
_COMMUNITY_MODULE = "langchain_community.callbacks.promptlayer_callback"
_MODEL = "gpt-4o-mini"
_WARM_UP = 5
# Distinct stderr lines quoted per variant: enough for a swallowed error and its kin.
_QUOTED_LINES = 3

# The fake OpenAI server alone in a process of its own, so the timed script is alone in
# its; h11 as the product serves (app/cli.py), no access log to write.
_FAKE_SERVER = (
    "import sys, uvicorn\n"
    "from tests.utils.fake_openai import FakeOpenAI\n"
    "uvicorn.run(FakeOpenAI().app, host='127.0.0.1', port=int(sys.argv[1]),"
    " log_level='warning', access_log=False, http='h11')\n"
)


def _sdk_sync_handler(tag: str) -> BaseCallbackHandler:
    """bench.reference's sync SDK handler, its logs tagged `tag` as well."""
    from promptlayer import PromptLayer

    from bench.reference import SyncSDKHandler

    class Tagged(SyncSDKHandler):
        def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
            """Log the call (synchronously: the call waits for the log's answer)."""
            body = self._calls.body(run_id, response)
            if body is not None:
                body["tags"] = [*body["tags"], tag]
                body["function_name"] = "langchain.ChatOpenAI"
                self._client.log_request(**body)

    return Tagged(PromptLayer(api_key=os.environ["PROMPTLAYER_API_KEY"],
                              base_url=os.environ["PROMPTLAYER_BASE_URL"]))


def _handlers(variant: str, tag: str) -> list[BaseCallbackHandler]:
    """The callbacks of `variant`, each configured from the environment as a script's."""
    if variant == "none":
        return []
    if variant == "promptserve":
        from promptserve import PromptLayerCallbackHandler

        return [PromptLayerCallbackHandler(pl_tags=[tag])]
    if variant == "sdk-sync":
        return [_sdk_sync_handler(tag)]
    if variant == "community":
        from langchain_community.callbacks.promptlayer_callback import (
            PromptLayerCallbackHandler as CommunityHandler,
        )

        handler: BaseCallbackHandler = CommunityHandler(pl_tags=[tag])
        return [handler]
    raise ValueError(f"unknown variant {variant!r}")


def _script(variant: str, calls: int, tag: str, openai_url: str) -> dict[str, float]:
    """In the child: warm up, then time `calls` sequential invokes (wall and CPU seconds)."""
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model=_MODEL, base_url=openai_url, api_key=SecretStr("x"),
                       callbacks=_handlers(variant, tag))
    for _ in range(_WARM_UP):  # connections, lazy imports, the delivery's first log
        model.invoke("hello")
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(calls):
        model.invoke("hello")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": time.process_time() - cpu, "ended": time.time()}


@dataclass
class _Run:
    """One variant's script in one round, as the parent saw it."""

    ms_per_call: float
    cpu_ms_per_call: float
    exit_seconds: float  # from the end of the timed loop to the process's exit
    stored: int
    stderr: list[str]


@dataclass
class HandlerResult:
    """Per variant, one figure per round, and what the backend stored of its calls."""

    calls: int
    rounds: int
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    exit_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stderr: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: defaultdict(collections.Counter))
    unavailable: dict[str, str] = field(default_factory=dict)
    community_install: str = ""

    @property
    def expected(self) -> int:
        """Calls each variant made over all rounds, warm-ups included."""
        return self.rounds * (_WARM_UP + self.calls)

    def add(self, variant: str, run: _Run) -> None:
        """Count one round's run of `variant`."""
        self.ms[variant].append(run.ms_per_call)
        self.cpu_ms[variant].append(run.cpu_ms_per_call)
        self.exit_seconds[variant].append(run.exit_seconds)
        self.stored[variant] += run.stored
        self.stderr[variant].update(run.stderr)

    def lines(self) -> list[str]:
        """Human-readable report."""
        out = [f"ChatOpenAI.invoke against the fake OpenAI server, a script per variant and "
               f"round: {self.calls} sequential calls timed after {_WARM_UP} warm-ups, "
               f"{self.rounds} rounds, order rotated (median [min–max])"]
        for name in HANDLER_VARIANTS:
            if name in self.unavailable:
                out.append(f"  {name:<11} not importable: {self.unavailable[name]}")
                continue
            if name not in self.ms:
                continue
            ratio = "" if name == "none" else \
                f"  none ÷ it {spread(self.ratios[name], '{:.3f}')}"
            logged = "" if name == "none" else \
                f"; stored {self.stored[name]}/{self.expected} calls"
            out.append(f"  {name:<11} {spread(self.ms[name])} ms/call{ratio}  (script CPU "
                       f"{spread(self.cpu_ms[name])} ms/call; exit "
                       f"{spread(self.exit_seconds[name])} s{logged})")
            for line, count in self.stderr[name].most_common(_QUOTED_LINES):
                out.append(f"  {'':<11} stderr ×{count}: {line[:300]}")
        if self.community_install:
            out.append(f"  community: {self.community_install}")
        if "promptserve" in self.ratios:
            met = (median(self.ratios["promptserve"]) >= TARGET
                   and self.stored["promptserve"] == self.expected)
            out.append(f"  target none ÷ promptserve ≥ {TARGET}, every call logged: "
                       f"{'met' if met else 'NOT met'}")
        return out


def _ensure_community() -> tuple[str, str | None]:
    """Install langchain-community into this venv when missing (only this part needs it);
    what was done, and why its handler cannot be imported if it cannot."""
    done = "already installed"
    if importlib.util.find_spec("langchain_community") is None:
        # A plain install adds langchain-classic and langchain-text-splitters and upgrades
        # nothing the lock pins (pip's dry run, 2026-12-03).
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                              COMMUNITY_REQUIREMENT], capture_output=True, text=True)
        if pip.returncode != 0:
            return "pip failed", _last_line(pip.stderr) or f"pip exited {pip.returncode}"
        done = f"{COMMUNITY_REQUIREMENT} installed into the venv for this part"
    probe = subprocess.run([sys.executable, "-c", f"import {_COMMUNITY_MODULE}"], cwd=ROOT,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return done, _last_line(probe.stderr) or f"import exited {probe.returncode}"
    return done, None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _stored(engine: sa.Engine, tag: str) -> int:
    """Rows the backend stored under `tag`."""
    import sqlalchemy as sa

    query = sa.text("SELECT count(*) FROM request_tags WHERE tag = :tag")
    with engine.connect() as connection:
        return int(connection.execute(query, {"tag": tag}).scalar_one())


def _run_script(variant: str, calls: int, tag: str, backend: Server, openai_url: str,
                work: Path, db: Database, engine: sa.Engine) -> _Run:
    """One variant's script to its exit, then what the backend stored of it."""
    from bench._backend import API_KEY, settle

    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
           "PROMPTLAYER_API_KEY": API_KEY, "PROMPTLAYER_BASE_URL": backend.url,
           # Logs left at exit wait here, not in the checkout's .promptserve.
           "PROMPTSERVE_CLIENT_SPOOL_DIR": str(work / f"handler-spool-{tag}"),
           "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.handler", "--variant", variant, "--calls", str(calls),
         "--tag", tag, "--openai-url", openai_url],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    exited = time.time()
    (work / f"handler-{tag}.log").write_text(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} script exited with {proc.returncode}:\n"
                           f"{proc.stderr[-3000:]}")
    timed: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    settle(db)  # the backend's writes of this script's last logs
    return _Run(ms_per_call=timed["seconds"] * 1000 / calls,
                cpu_ms_per_call=timed["cpu"] * 1000 / calls,
                exit_seconds=exited - timed["ended"], stored=_stored(engine, tag),
                stderr=[line.strip() for line in proc.stderr.splitlines() if line.strip()])


def run_handler(work: Path, *, rounds: int, calls: int,
                names: tuple[str, ...] = HANDLER_VARIANTS) -> HandlerResult:
    """`rounds` rounds of every variant of `names` (a script each), order rotated per round."""
    import sqlalchemy as sa

    from bench._backend import running_backend

    result = HandlerResult(calls=calls, rounds=rounds)
    variants = list(names)
    if "community" in variants:
        result.community_install, missing = _ensure_community()
        if missing is not None:
            result.unavailable["community"] = missing
            variants.remove("community")
    port = free_port()
    with running_backend("handler-backend", work) as (backend, db), \
            spawn("handler-fake-openai", [str(port)], env={}, port=port, log_dir=work,
                  health_path="/v1/models", python_args=("-c", _FAKE_SERVER)) as fake:
        engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool)
        try:
            for r in range(rounds):
                ms: dict[str, float] = {}
                for variant in variants[r % len(variants):] + variants[: r % len(variants)]:
                    run = _run_script(variant, calls, f"bench-handler-{variant}-{r}", backend,
                                      f"{fake.url}/v1", work, db, engine)
                    result.add(variant, run)
                    ms[variant] = run.ms_per_call
                if "none" in ms:
                    for variant, value in ms.items():
                        if variant != "none":
                            result.ratios[variant].append(ms["none"] / value)
        finally:
            engine.dispose()
    return result


def main() -> None:
    """Parse arguments; compare the variants, or (--variant) be one variant's script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=HANDLER_VARIANTS,
                        help="be this variant's timed script (prints its timing as JSON)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tag", default="bench-handler", help="the script's PromptLayer tag")
    parser.add_argument("--openai-url", help="the script's OpenAI base URL (…/v1)")
    args = parser.parse_args()
    if args.variant:
        if not args.openai_url:
            parser.error("--variant needs --openai-url")
        timed = _script(args.variant, args.calls, args.tag, args.openai_url)
        sys.stdout.write("\n" + json.dumps(timed) + "\n")
        sys.stdout.flush()
        return  # our handler's logs flush at the interpreter's exit, outside the timing
    with tempfile.TemporaryDirectory(prefix="promptserve-handler-") as work:
        for line in run_handler(Path(work), rounds=args.rounds, calls=args.calls).lines():
            print(line)


if __name__ == "__main__":
    main()
