"""Traced throughput of /example on a split label ÷ the same chain on a plain label.

Two promptserve servers log to one backend (bench._fleet's `traced` mode), loaded at the same
time on CPU 0 as bench.together loads its pairs, so a slow spell of the shared core slows
both alike: `plain` is the stock catalog (/example follows `prod`), `split` the same catalog
with /example's `prod` split 50/50 across versions 1 and 2 (declared on the chain, as for the
hosted registry: the serving path is the one a split read from the backend takes). Every
request names its caller (`X-PromptServe-Key`), so the split server hashes a key per run, and
both servers read the header. `plain-2` beside `plain` is the method's own error.

Run: `python -m bench.run --only release`; `python -m bench.release serve --port P` is the
split server itself.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import yaml
from langchain_core.output_parsers import StrOutputParser
from promptlayer import PromptLayer

from bench._backend import API_KEY, backend_env, running_backend, seed
from bench._bodies import INVOKE_BODY
from bench._procs import Server, free_port, spawn
from bench._stats import median, spread
from bench._wrk import WrkResult, post_script, run_wrk
from bench.overhead import pinned

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.config import Settings

__all__ = ["ReleaseResult", "run_release"]

TARGET = 0.99
_PATH = "/example/invoke"
_CONNECTIONS = 32
_HEADERS = {"X-PromptServe-Key": "bench-user-18"}


@dataclass
class ReleaseResult:
    """Per pair, one figure per round: its rps ÷ plain's."""

    ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    plain_rps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    with_id: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    versions_seen: dict[int, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable report."""
        rounds = len(next(iter(self.ratios.values()), []))
        out = [f"{_PATH} traced throughput, split label ÷ plain label, both loaded at once on "
               f"CPU 0 ({_CONNECTIONS} connections each), {rounds} rounds "
               f"(median [min–max])"]
        for name, ratios in self.ratios.items():
            out.append(f"  {name:<8} ÷ plain {spread(ratios, '{:.3f}')}  "
                       f"({spread(self.rps[name], '{:.0f}')} vs plain "
                       f"{spread(self.plain_rps[name], '{:.0f}')} req/s; answers "
                       f"{self.answers[name]}, with id {self.with_id[name]}, errors "
                       f"{self.errors[name]})")
        out.append(f"  split server's versions over 40 keyed probes: {self.versions_seen}")
        ok = (median(self.ratios["split"]) >= TARGET
              and self.with_id["split"] == self.answers["split"]
              and self.errors["split"] == 0 and len(self.versions_seen) == 2)
        out.append(f"  target split ÷ plain ≥ {TARGET}, every answer with its id, both arms "
                   f"served: {'met' if ok else 'NOT met'}")
        return out


def _publish_v2(backend_url: str) -> None:
    """Version 2 of `example`, `prod` left on version 1 (the split's control)."""
    from chains import TEMPLATES_DIR

    template = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    blueprint = template["blueprint"]
    blueprint["messages"][-1]["content"][0]["text"] = "A short slogan for {product}, please."
    PromptLayer(api_key=API_KEY, base_url=backend_url).templates.publish({
        "prompt_name": "example", "prompt_template": blueprint,
        "metadata": template["metadata"], "commit_message": "bench v2", "release_labels": [],
    })


@contextlib.contextmanager
def _server(name: str, work: Path, backend_url: str, module_args: list[str]) -> Iterator[Server]:
    data_dir = work / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**backend_env(data_dir), "PROMPTLAYER_BASE_URL": backend_url}
    port = free_port()
    with spawn(name, [*module_args, "--port", str(port)], env=env, port=port,
               log_dir=work, health_path="/healthz") as server:
        yield server


def _both(plain: Server, other: Server, script: Path, seconds: float
          ) -> tuple[WrkResult, WrkResult]:
    results: dict[str, WrkResult] = {}

    def load(server: Server) -> None:
        results[server.name] = run_wrk(server.url + _PATH, script, seconds=seconds,
                                       connections=_CONNECTIONS)

    threads = [threading.Thread(target=load, args=(s,)) for s in (plain, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results[plain.name], results[other.name]


def _versions(server: Server) -> dict[int, int]:
    """Which versions the split server answers 40 different keys with."""
    seen: dict[int, int] = defaultdict(int)
    with httpx.Client(timeout=30) as client:
        for i in range(40):
            answer = client.post(server.url + _PATH, json=INVOKE_BODY,
                                 headers={"X-PromptServe-Key": f"probe-{i}"})
            answer.raise_for_status()
            arms = answer.json()["metadata"]["promptlayer_release_arms"]
            seen[int(arms["example"]["version"])] += 1
    return dict(seen)


def run_release(work: Path, *, rounds: int, seconds: float) -> ReleaseResult:
    """`rounds` rounds; in each, `split` and then `plain-2` run beside `plain`."""
    result = ReleaseResult()
    script = post_script(work / "release-invoke.lua", body=INVOKE_BODY, headers=_HEADERS,
                         count_ids=True)
    with contextlib.ExitStack() as stack:
        backend, _ = stack.enter_context(running_backend("release-backend", work))
        seed(backend.url)
        _publish_v2(backend.url)
        servers = {
            "plain": stack.enter_context(
                _server("plain", work, backend.url, ["bench.serve", "traced"])),
            "plain-2": stack.enter_context(
                _server("plain-2", work, backend.url, ["bench.serve", "traced"])),
            "split": stack.enter_context(
                _server("split", work, backend.url, ["bench.release", "serve"])),
        }
        result.versions_seen = _versions(servers["split"])
        stack.enter_context(pinned(list(servers.values()), backend))
        for server in servers.values():
            run_wrk(server.url + _PATH, script, seconds=min(2.0, seconds))
        for _ in range(rounds):
            for name in ("split", "plain-2"):
                plain_out, out = _both(servers["plain"], servers[name], script, seconds)
                result.ratios[name].append(out.rps / plain_out.rps)
                result.rps[name].append(out.rps)
                result.plain_rps[name].append(plain_out.rps)
                result.answers[name] += out.requests
                result.with_id[name] += out.extra.get("with_id", 0)
                result.errors[name] += (out.non_2xx + out.socket_errors
                                        + plain_out.non_2xx + plain_out.socket_errors)
    return result


def split_app(settings: Settings) -> FastAPI:
    """promptserve's catalog with /example's `prod` split 50/50 over versions 1 and 2."""
    from app.service import create_app, discover_chains
    from bench.fake_model import fake_chat_model
    from promptserve import Chain, RegistryPrompt

    catalog = [c for c in discover_chains(settings.chains_package,
                                          templates_dir=settings.templates_dir)
               if c.path != "/example"]
    prompt = RegistryPrompt("example", label="prod", split={1: 50, 2: 50}, control=1)
    catalog.append(Chain("/example", prompt | StrOutputParser(), name="example"))
    return create_app(settings, chains=catalog, chat_model=fake_chat_model)


def main() -> None:
    """`serve --port P`: the split server, run as bench.serve runs the others."""
    from app.cli import _run
    from app.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(host="127.0.0.1", port=args.port)
    _run(split_app(settings), settings)


if __name__ == "__main__":
    main()
