"""A plain script's cost of logging: N sequential `ChatOpenAI.invoke` calls, per handler.

    .venv/bin/python -m bench.handler [--rounds 5] [--calls 200] [--pin]

Each variant is a script of its own, a fresh child process (`--variant X`), making
`--calls` sequential `ChatOpenAI(...).invoke("hello")` calls against the fake OpenAI server
(tests.utils.fake_openai, in another process) after a few untimed warm-up calls; it times
its loop (after a full garbage collection) and reports it, with the collections that ran
in it; its exit (when our handler flushes) is outside the timing:
- `none`: no handler;
- `noop`: a `BaseCallbackHandler` that does nothing, and `noop-tracer`: a `BaseTracer`
  whose `_persist_run` does nothing (LangChain's own run bookkeeping, as a LangSmith-style
  tracer has it): what LangChain's dispatch of any handler costs, the floor of ours;
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
throughput relative to no handler, paired within the round). A round of scripts takes some
20 s, longer than this VM's slow spells (on 2026-12-04 even `noop` spread 0.54–1.81 over 20
rounds), so the same variants then also run in one process (`--paired`, 4 × the rounds):
blocks of `--calls` invokes alternate, a block's neighbours in time are other variants'
blocks, and none ÷ it pairs each block with the `none` block of its round. Every run tags
its logs with a tag of its own, so the backend's `request_tags` count what each run stored;
the target is none ÷ promptserve ≥ 0.95 with every call, warm-ups included, stored.
On two CPUs the backend's ingest (~0.2 ms of CPU per log) and the fake model share the
script's cores; `--pin` gives the scripts CPU 0 and those two services CPU 1, as a script
has its machine to itself and reaches both over the network.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
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

HANDLER_VARIANTS = ("none", "noop", "noop-tracer", "promptserve", "sdk-sync", "community")
# The variants meant to log each call (the others log nothing by design).
_LOGGING = ("promptserve", "sdk-sync", "community")
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


def _noop_tracer() -> BaseCallbackHandler:
    """A `BaseTracer` that builds LangChain's `Run` objects and persists nothing."""
    from langchain_core.tracers.base import BaseTracer
    from langchain_core.tracers.schemas import Run

    class NoopTracer(BaseTracer):
        def _persist_run(self, run: Run) -> None:
            """Keep nothing."""

    return NoopTracer()


def _handlers(variant: str, tag: str) -> list[BaseCallbackHandler]:
    """The callbacks of `variant`, each configured from the environment as a script's."""
    if variant == "none":
        return []
    if variant == "noop":
        return [BaseCallbackHandler()]  # every callback of the base class does nothing
    if variant == "noop-tracer":
        return [_noop_tracer()]
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


def _script(variant: str, calls: int, tag: str, openai_url: str) -> dict[str, Any]:
    """In the child: warm up, then time `calls` sequential invokes (wall and CPU seconds,
    garbage collections per generation; for our handler, the log posts made meanwhile)."""
    from langchain_openai import ChatOpenAI

    handlers = _handlers(variant, tag)
    model = ChatOpenAI(model=_MODEL, base_url=openai_url, api_key=SecretStr("x"),
                       callbacks=handlers)
    for _ in range(_WARM_UP):  # connections, lazy imports, the delivery's first log
        model.invoke("hello")
    posts = _log_posts(handlers)
    # Every variant's loop starts from the same collector state, the start-up's garbage
    # collected here, untimed; the collections that run in the loop are reported.
    gc.collect()
    before = [g["collections"] for g in gc.get_stats()]
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(calls):
        model.invoke("hello")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": time.process_time() - cpu, "ended": time.time(),
            "posts": _log_posts(handlers) - posts,
            "gc": [g["collections"] - c for g, c in zip(gc.get_stats(), before, strict=True)]}


def _log_posts(handlers: list[BaseCallbackHandler]) -> int:
    """Log posts (single or batch) made so far by our handler's delivery (0 for others);
    duck-typed, so the other variants' scripts never import promptserve."""
    for handler in handlers:
        background = getattr(handler, "background", None)
        if background is not None:
            return int(background.delivery.stats()["log_posts_total"])
    return 0


def _paired_script(names: list[str], calls: int, rounds: int, tag: str,
                   openai_url: str) -> dict[str, dict[str, list[float]]]:
    """In one child, every variant's model: blocks of `calls` invokes alternating, the
    order rotated each round, each block after a full collection; after our handler's block
    its `flush()`, untimed as a script's exit flush is, so no log is left for the next
    block's timing. Per variant, ms and CPU ms per call of each block."""
    from langchain_openai import ChatOpenAI

    models = {}
    for name in names:
        handlers = _handlers(name, f"{tag}-{name}")
        model = ChatOpenAI(model=_MODEL, base_url=openai_url, api_key=SecretStr("x"),
                           callbacks=handlers)
        for _ in range(_WARM_UP):
            model.invoke("hello")
        # Our handler, duck-typed as in `_log_posts`: the others have nothing to flush.
        models[name] = (model, [cast(Any, h).flush for h in handlers if hasattr(h, "background")])
    timed: dict[str, dict[str, list[float]]] = {name: {"ms": [], "cpu": []} for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            model, flushes = models[name]
            gc.collect()
            cpu, started = time.process_time(), time.perf_counter()
            for _ in range(calls):
                model.invoke("hello")
            timed[name]["ms"].append((time.perf_counter() - started) * 1000 / calls)
            timed[name]["cpu"].append((time.process_time() - cpu) * 1000 / calls)
            for flush in flushes:  # as a script's exit flush: not timed, and not left over
                flush()
    return timed


@dataclass
class _Run:
    """One variant's script in one round, as the parent saw it."""

    ms_per_call: float
    cpu_ms_per_call: float
    exit_seconds: float  # from the end of the timed loop to the process's exit
    stored: int
    stderr: list[str]
    posts: int  # log posts our handler's delivery made during the timed loop
    gc: list[int]  # garbage collections per generation during the timed loop


@dataclass
class HandlerResult:
    """Per variant, one figure per round, and what the backend stored of its calls."""

    calls: int
    rounds: int
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # noop ÷ it, paired within the round: how far above the floor (dispatch alone) it is.
    above_floor: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    posts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    gc: dict[str, list[list[int]]] = field(default_factory=lambda: defaultdict(list))
    exit_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stderr: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: defaultdict(collections.Counter))
    unavailable: dict[str, str] = field(default_factory=dict)
    community_install: str = ""
    pinned: bool = False
    # The same variants in one process (`_paired_script`): per block, and none ÷ it paired.
    paired_rounds: int = 0
    paired_ms: dict[str, list[float]] = field(default_factory=dict)
    paired_cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    paired_ratios: dict[str, list[float]] = field(default_factory=dict)
    paired_stored: dict[str, int] = field(default_factory=dict)

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
        self.gc[variant].append(run.gc)
        if variant == "promptserve":
            self.posts[variant].append(run.posts)

    def lines(self) -> list[str]:
        """Human-readable report."""
        out = [f"ChatOpenAI.invoke against the fake OpenAI server, a script per variant and "
               f"round: {self.calls} sequential calls timed after {_WARM_UP} warm-ups, "
               f"{self.rounds} rounds, order rotated (median [min–max])"
               + ("; scripts on CPU 0, backend and fake model on CPU 1" if self.pinned else "")]
        for name in HANDLER_VARIANTS:
            if name in self.unavailable:
                out.append(f"  {name:<11} not importable: {self.unavailable[name]}")
                continue
            if name not in self.ms:
                continue
            ratio = "" if name == "none" else \
                f"  none ÷ it {spread(self.ratios[name], '{:.3f}')}"
            logged = "" if name not in _LOGGING else \
                f"; stored {self.stored[name]}/{self.expected} calls"
            collected = "/".join(f"{median([run[g] for run in self.gc[name]]):g}"
                                 for g in range(3))
            out.append(f"  {name:<11} {spread(self.ms[name])} ms/call{ratio}  (script CPU "
                       f"{spread(self.cpu_ms[name])} ms/call; GC {collected}; exit "
                       f"{spread(self.exit_seconds[name])} s{logged})")
            if self.posts.get(name):
                out.append(f"  {'':<11} {spread(self.posts[name], '{:.0f}')} log posts per "
                           f"{self.calls} calls")
            for line, count in self.stderr[name].most_common(_QUOTED_LINES):
                out.append(f"  {'':<11} stderr ×{count}: {line[:300]}")
        if self.community_install:
            out.append(f"  community: {self.community_install}")
        if "noop" in self.ratios:
            out.append(f"  floor (LangChain's dispatch of a do-nothing handler): none ÷ noop "
                       f"{spread(self.ratios['noop'], '{:.3f}')}")
        if "promptserve" in self.above_floor:
            out.append(f"  promptserve against that floor: noop ÷ promptserve "
                       f"{spread(self.above_floor['promptserve'], '{:.3f}')}")
        out += self._paired_lines()
        if "promptserve" in self.ratios:
            stored = self.stored["promptserve"]
            verdicts = [f"scripts {self._verdict(self.ratios, stored, self.expected)}"]
            if "promptserve" in self.paired_ratios:
                expected = self.paired_rounds * self.calls + _WARM_UP
                verdicts.append("one process " + self._verdict(
                    self.paired_ratios, self.paired_stored.get("promptserve", 0), expected))
            out.append(f"  target none ÷ promptserve ≥ {TARGET}, every call logged: "
                       f"{'; '.join(verdicts)}")
        return out

    @staticmethod
    def _verdict(ratios: dict[str, list[float]], stored: int, expected: int) -> str:
        met = median(ratios["promptserve"]) >= TARGET and stored == expected
        return "met" if met else "NOT met"


    def _paired_lines(self) -> list[str]:
        if not self.paired_ms:
            return []
        out = [f"  in one process, blocks of {self.calls} calls alternating, "
               f"{self.paired_rounds} rounds (each block after a full collection, ours "
               f"flushed after it, untimed):"]
        for name in HANDLER_VARIANTS:
            if name not in self.paired_ms:
                continue
            ratio = "" if name == "none" else \
                f"  none ÷ it {spread(self.paired_ratios[name], '{:.3f}')}"
            expected = self.paired_rounds * self.calls + _WARM_UP
            logged = "" if name not in _LOGGING else \
                f"; stored {self.paired_stored.get(name, 0)}/{expected} calls"
            out.append(f"    {name:<11} {spread(self.paired_ms[name])} ms/call{ratio}  "
                       f"(CPU {spread(self.paired_cpu_ms[name])} ms/call{logged})")
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
    timed: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    settle(db)  # the backend's writes of this script's last logs
    return _Run(ms_per_call=timed["seconds"] * 1000 / calls,
                cpu_ms_per_call=timed["cpu"] * 1000 / calls,
                exit_seconds=exited - timed["ended"], stored=_stored(engine, tag),
                stderr=[line.strip() for line in proc.stderr.splitlines() if line.strip()],
                posts=int(timed["posts"]), gc=[int(n) for n in timed["gc"]])


def _run_paired(result: HandlerResult, variants: list[str], rounds: int, backend: Server,
                openai_url: str, work: Path, db: Database, engine: sa.Engine) -> None:
    """`_paired_script` in a child process; its figures and what the backend stored."""
    from bench._backend import API_KEY, settle

    tag = "bench-handler-paired"
    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
           "PROMPTLAYER_API_KEY": API_KEY, "PROMPTLAYER_BASE_URL": backend.url,
           "PROMPTSERVE_CLIENT_SPOOL_DIR": str(work / "handler-spool-paired"),
           "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.handler", "--paired", ",".join(variants),
         "--calls", str(result.calls), "--rounds", str(rounds), "--tag", tag,
         "--openai-url", openai_url],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    (work / "handler-paired.log").write_text(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"paired script exited with {proc.returncode}:\n"
                           f"{proc.stderr[-3000:]}")
    timed: dict[str, dict[str, list[float]]] = json.loads(proc.stdout.splitlines()[-1])
    settle(db)
    result.paired_rounds = rounds
    for name, figures in timed.items():
        result.paired_ms[name] = figures["ms"]
        result.paired_cpu_ms[name] = figures["cpu"]
        result.paired_stored[name] = _stored(engine, f"{tag}-{name}")
    if "none" in timed:
        for name, figures in timed.items():
            result.paired_ratios[name] = [n / m for n, m in
                                          zip(timed["none"]["ms"], figures["ms"], strict=True)]


@contextlib.contextmanager
def _pinned(pin: bool, services: list[Server]) -> Iterator[None]:
    """With `pin`: every thread of `services` on this process's second CPU, this process
    (so the scripts it starts) on its first; undone after."""
    mine = os.sched_getaffinity(0)
    if not pin:
        yield
        return
    first, second, *_ = sorted(mine)
    for service in services:
        for tid in os.listdir(f"/proc/{service.pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), {second})
    os.sched_setaffinity(0, {first})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


def run_handler(work: Path, *, rounds: int, calls: int,
                names: tuple[str, ...] = HANDLER_VARIANTS,
                paired_rounds: int | None = None, pin: bool = False) -> HandlerResult:
    """`rounds` rounds of every variant of `names` (a script each), order rotated per round;
    then `paired_rounds` (default 4 × `rounds`) of them all in one process. `pin`: the
    scripts on CPU 0, the backend and the fake model (services a real script reaches over
    the network) on CPU 1, so their work is not charged to the script's core."""
    import sqlalchemy as sa

    from bench._backend import running_backend

    pin = pin and len(os.sched_getaffinity(0)) >= 2
    result = HandlerResult(calls=calls, rounds=rounds, pinned=pin)
    variants = list(names)
    if "community" in variants:
        result.community_install, missing = _ensure_community()
        if missing is not None:
            result.unavailable["community"] = missing
            variants.remove("community")
    port = free_port()
    with running_backend("handler-backend", work) as (backend, db), \
            spawn("handler-fake-openai", [str(port)], env={}, port=port, log_dir=work,
                  health_path="/v1/models", python_args=("-c", _FAKE_SERVER)) as fake, \
            _pinned(pin, [backend, fake]):
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
                if "noop" in ms and "promptserve" in ms:
                    result.above_floor["promptserve"].append(ms["noop"] / ms["promptserve"])
            _run_paired(result, variants, paired_rounds or 4 * rounds, backend,
                        f"{fake.url}/v1", work, db, engine)
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
    parser.add_argument("--pin", action="store_true",
                        help="scripts on CPU 0, the backend and the fake model on CPU 1")
    parser.add_argument("--paired", help="be the one-process script of these variants "
                                         "(comma-separated; prints their timings as JSON)")
    args = parser.parse_args()
    if args.paired:
        if not args.openai_url:
            parser.error("--paired needs --openai-url")
        paired = _paired_script(args.paired.split(","), args.calls, args.rounds, args.tag,
                                args.openai_url)
        sys.stdout.write("\n" + json.dumps(paired) + "\n")
        sys.stdout.flush()
        return
    if args.variant:
        if not args.openai_url:
            parser.error("--variant needs --openai-url")
        timed = _script(args.variant, args.calls, args.tag, args.openai_url)
        sys.stdout.write("\n" + json.dumps(timed) + "\n")
        sys.stdout.flush()
        return  # our handler's logs flush at the interpreter's exit, outside the timing
    with tempfile.TemporaryDirectory(prefix="promptserve-handler-") as work:
        for line in run_handler(Path(work), rounds=args.rounds, calls=args.calls,
                                pin=args.pin).lines():
            print(line)


if __name__ == "__main__":
    main()
