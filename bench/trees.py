"""Before/after in one run: invoke throughput of two git trees, loaded alternately.

    .venv/bin/python -m bench.trees --before REV [--rounds 5] [--seconds 6]

REV is checked out into a temporary git worktree. One `promptserve backend` (this tree)
takes every remote-mode log; `bare` LangServe (this tree) is the yardstick; `traced`
(remote backend) and `embedded` (own backend in-process) run from both trees. wrk loads
one server at a time, order rotated every round, so both trees meet the same machine; the
report gives req/s and ÷ bare (median [min–max] of rounds) and CPU per request of each
server and of the backend. Separate runs of two trees on this shared 2-core machine differ
by more than the changes measured, which is why this exists.

The older tree runs with this tree's venv, and every server is pinned to uvicorn's h11
parser as `promptserve serve` runs today: a tree from before httptools became a
dependency would otherwise pick httptools on its own (uvicorn's "auto").
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from bench._backend import running_backend, seed
from bench._bodies import INVOKE_BODY
from bench._fleet import start_variant
from bench._procs import ROOT, Server, cpu_seconds
from bench._stats import median, spread
from bench._wrk import post_script, run_wrk

__all__ = ["main"]

# `python -c` launcher: uvicorn.run pinned to h11, then the module named by the first
# argument (`bench.serve`) of the tree in the working directory (sys.path[0] is the cwd).
_H11_LAUNCHER = (
    "import functools, runpy, sys, uvicorn; "
    "uvicorn.run = functools.partial(uvicorn.run, http='h11'); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


@contextlib.contextmanager
def _worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="promptserve-before-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
                       check=True, capture_output=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                           check=False, capture_output=True)


def _serve(stack: contextlib.ExitStack, work: Path, name: str, root: Path, kind: str,
           backend_url: str) -> Server:
    variant = stack.enter_context(start_variant(
        name, work, backend_url=None if kind == "embedded" else backend_url, backend_db=None,
        kind="traced" if kind == "embedded" else kind, root=root,
        python_args=("-c", _H11_LAUNCHER)))
    return variant.server


def main() -> None:
    """Serve both trees' variants and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promptserve-trees-") as tmp, \
            _worktree(args.before) as before, contextlib.ExitStack() as stack:
        work = Path(tmp)
        backend, _ = stack.enter_context(running_backend("trees-backend", work))
        seed(backend.url)
        servers = {"bare": _serve(stack, work, "bare", ROOT, "bare", backend.url)}
        for kind in ("traced", "embedded"):
            for label, root in (("before", before), ("after", ROOT)):
                name = f"{kind} {label}"
                servers[name] = _serve(stack, work, name.replace(" ", "-"), root, kind,
                                       backend.url)
        script = post_script(work / "invoke.lua", body=INVOKE_BODY, headers={}, count_ids=True)
        for server in servers.values():
            run_wrk(server.url + "/example/invoke", script, seconds=2.0)  # warm-up
        rps: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        backend_cpu: dict[str, list[float]] = defaultdict(list)
        names = list(servers)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                server = servers[name]
                own, theirs = cpu_seconds(server.pid), cpu_seconds(backend.pid)
                out = run_wrk(server.url + "/example/invoke", script, seconds=args.seconds)
                done = max(1, out.requests)
                rps[name].append(out.requests / args.seconds)
                cpu[name].append((cpu_seconds(server.pid) - own) / done * 1000)
                backend_cpu[name].append((cpu_seconds(backend.pid) - theirs) / done * 1000)
        bare = median(rps["bare"])
        print(f"before = {args.before}, after = this tree; {args.rounds} rounds x "
              f"{args.seconds:g} s, 32 connections (req/s median [min-max])")
        for name in names:
            ratios = [x / bare for x in rps[name]]
            print(f"  {name:16s} {spread(rps[name], '{:.0f}')} req/s  "
                  f"÷ bare {spread(ratios)}  CPU/request: server {spread(cpu[name])} ms, "
                  f"backend {spread(backend_cpu[name])} ms")


if __name__ == "__main__":
    main()
