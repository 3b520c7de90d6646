"""Where the traced service spends its CPU under load: py-spy samples, grouped by layer.

py-spy (not a project dependency: `.venv/bin/pip install py-spy`) samples the service
process while wrk loads /example/invoke with 32 connections. Each sample's stack is
attributed to the innermost frame that belongs to a known layer ("self" cost by layer,
adds up to 100%), and separately every layer present in the stack is counted once
("inclusive", overlaps). The same is done for bare LangServe, so the difference is ours.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench._bodies import INVOKE_BODY
from bench._fleet import fleet
from bench._wrk import post_script, run_wrk

__all__ = ["LAYERS", "ProfileResult", "run_profile"]

# (layer, path prefix as py-spy prints it) — first match wins.
LAYERS: tuple[tuple[str, str], ...] = (
    ("ours: id rewriting per route (JSON rewrite, ids)", "promptserve/server/_responses.py"),
    ("ours: feedback token", "promptserve/server/_tokens.py"),
    ("ours: registry prompts", "promptserve/prompts/"),
    ("ours: tracer callbacks", "promptserve/tracing/_handler.py"),
    ("ours: tracer run tree", "promptserve/tracing/_runs.py"),
    ("ours: log blueprints", "promptserve/tracing/_blueprints.py"),
    ("ours: delivery", "promptserve/tracing/_delivery.py"),
    ("ours: traced runnable, config modifier, guards", "promptserve/server/"),
    ("ours: the service", "app/"),
    ("delivery HTTP client (httpx/httpcore)", "httpx/"),
    ("delivery HTTP client (httpx/httpcore)", "httpcore/"),
    ("LangChain callback dispatch", "langchain_core/callbacks/"),
    ("LangChain tracers / run trees", "langchain_core/tracers/"),
    ("LangChain runnables", "langchain_core/"),
    ("LangServe", "langserve/"),
    ("pydantic", "pydantic"),
    ("uvicorn + h11 (HTTP server)", "uvicorn/"),
    ("uvicorn + h11 (HTTP server)", "h11/"),
    ("starlette / fastapi", "starlette/"),
    ("starlette / fastapi", "fastapi/"),
    ("json", "json/"),
    ("asyncio", "asyncio/"),
    ("logging", "logging/"),
    ("uuid", "uuid"),
)


def _path(frame: str) -> str:
    """`app/x.py` of a py-spy frame `function (app/x.py:12)`."""
    return frame[frame.rfind("(") + 1 : frame.rfind(":")]


def _layer(frame: str) -> str | None:
    path = _path(frame)
    for name, prefix in LAYERS:
        if path.startswith(prefix):
            return name
    return None


@dataclass
class ProfileResult:
    """Samples per layer of one variant."""

    variant: str
    samples: int = 0
    requests: int = 0
    self_by_layer: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    top_functions: Counter[str] = field(default_factory=Counter)

    def add(self, stack: list[str], count: int) -> None:
        """Attribute one collapsed stack (outermost first) seen `count` times."""
        self.samples += count
        innermost = next((name for f in reversed(stack) if (name := _layer(f))), "other")
        self.self_by_layer[innermost] += count
        for name in {n for f in stack if (n := _layer(f))}:
            self.inclusive[name] += count
        ours = [f for f in stack if _path(f).startswith(("app/", "promptserve/"))]
        if ours:
            self.top_functions[ours[-1]] += count

    def lines(self) -> list[str]:
        """Human-readable report: shares of samples (CPU time of the service process)."""
        n = max(1, self.samples)
        out = [f"profile of {self.variant}: {self.samples} samples, {self.requests} requests"]
        out.append("  self (innermost known layer):")
        out += [f"    {c / n:6.1%}  {name}" for name, c in self.self_by_layer.most_common(14)]
        out.append("  inclusive (layer anywhere in the stack):")
        out += [f"    {c / n:6.1%}  {name}" for name, c in self.inclusive.most_common(14)]
        out.append("  our functions (innermost app/ frame):")
        out += [f"    {c / n:6.1%}  {f}" for f, c in self.top_functions.most_common(10)]
        return out


def _parse(raw: Path, result: ProfileResult) -> None:
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            result.add(stack.split(";"), int(count))


def _py_spy() -> str | None:
    local = Path(__file__).resolve().parents[1] / ".venv/bin/py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _record(py_spy: str, pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", f"{int(seconds)}",
         "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_profile(work: Path, *, seconds: float,
                names: tuple[str, ...] = ("bare", "traced")) -> list[ProfileResult]:
    """Profile each variant under wrk load for `seconds`."""
    py_spy = _py_spy()
    if py_spy is None:
        raise RuntimeError("py-spy is missing: .venv/bin/pip install py-spy (`make bench` does)")
    script = post_script(work / "invoke.lua", body=INVOKE_BODY, headers={}, count_ids=True)
    results = []
    with fleet(work, names) as (_, variants):
        for name in names:
            server = variants[name].server
            url = server.url + "/example/invoke"
            run_wrk(url, script, seconds=2)  # warm-up
            raw = work / f"profile-{name}.txt"
            spy = _record(py_spy, server.pid, raw, seconds)
            try:
                out = run_wrk(url, script, seconds=seconds)
            finally:
                spy.wait(timeout=seconds + 60)
            result = ProfileResult(name, requests=out.requests)
            if raw.exists():
                _parse(raw, result)
            results.append(result)
    return results
