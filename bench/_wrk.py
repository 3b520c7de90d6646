"""wrk runs: a POST script per target, parsed results, and the id counter hook.

Every variant of one comparison runs the same script, so the client's own cost (the Lua
`response()` hook makes wrk parse every body) is the same for all of them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WrkResult", "post_script", "run_wrk"]

# Counts answers whose JSON carries the run's request ids: ID_PATTERN is an int
# `promptlayer_request_id` (with or without a space: the middleware wrote json.dumps'
# separators before it used orjson), or for a run of several calls their list
# `promptlayer_request_ids` with exactly that many ints.
_COUNT_IDS = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) with_id = 0; without_id = 0 end
function response(status, headers, body)
  if status == 200 and string.find(body, 'ID_PATTERN') then
    with_id = with_id + 1
  else
    without_id = without_id + 1
  end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("with_id"); b = b + t:get("without_id") end
  io.write(string.format("BENCH with_id=%d without_id=%d\n", a, b))
end
"""


def _id_pattern(ids: int) -> str:
    """The Lua pattern of an answer carrying `ids` request ids."""
    if ids == 1:
        return r'"promptlayer_request_id":%s*%d'
    listed = r"%s*,%s*".join([r"%d+"] * ids)
    return rf'"promptlayer_request_ids":%s*%[%s*{listed}%s*%]'


def post_script(path: Path, *, body: Any, headers: dict[str, str], count_ids: bool,
                ids: int = 1) -> Path:
    """Write a wrk Lua script that POSTs `body` (JSON) with `headers`; `count_ids`: count
    the answers carrying `ids` request ids (`with_id`)."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{json.dumps(body)}]==]"]
    for name, value in {"Content-Type": "application/json", **headers}.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    hook = _COUNT_IDS.replace("ID_PATTERN", _id_pattern(ids)) if count_ids else ""
    path.write_text("\n".join(lines) + "\n" + hook)
    return path


@dataclass
class WrkResult:
    """One wrk run."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    extra: dict[str, int] = field(default_factory=dict)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse(output: str) -> WrkResult:
    """The figures of wrk's `--latency` report (and our BENCH line)."""
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    seconds = _ms(total.group(2) + total.group(3)) / 1000
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)$", output, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    extra = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", _bench_line(output))}
    return WrkResult(
        requests=int(total.group(1)), seconds=seconds,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(latency["50"]) if "50" in latency else float("nan"),
        p99_ms=_ms(latency["99"]) if "99" in latency else float("nan"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
        extra=extra,
    )


def _bench_line(output: str) -> str:
    found = re.search(r"^BENCH (.*)$", output, re.M)
    return found.group(1) if found else ""


def run_wrk(
    url: str, script: Path, *, seconds: float, connections: int = 32, threads: int = 1,
) -> WrkResult:
    """Run wrk against `url` for `seconds` (whole seconds: wrk's unit); one thread leaves
    the other core to the servers."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
               "--timeout", "10s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    return parse(done.stdout)
