"""`promptserve serve --workers 2` with no model settings: one model server for both workers,
started before them and stopped with serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live.conftest import short_templates
from tests.utils.servers import free_port, wait_until_up


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_serve_runs_one_model_server_for_all_workers_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")},
        "PROMPTSERVE_DATA_DIR": str(tmp_path / "data"),
        "PROMPTSERVE_TEMPLATES_DIR": str(short_templates(tmp_path / "seed")),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/readyz", proc=proc, timeout=180)
        answer = httpx.post(f"{url}/example/invoke", json={"input": {"product": "pens"}},
                            timeout=60)
        assert answer.status_code == 200, answer.text
        model_servers = [p for p in _children(proc.pid) if "app._llama_server" in _cmdline(p)]
        assert len(model_servers) == 1
        grandchildren = {g for c in _children(proc.pid) for g in _children(c)}
        assert not [g for g in grandchildren if "app._llama_server" in _cmdline(g)], (
            "a worker must not start a model server of its own"
        )
        deadline = time.monotonic() + 10  # the welcome comes once /healthz answers
        while "serving on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        printed = log.read_text()
        assert f"serving on {url} (2 worker(s))" in printed and "curl" in printed
        assert "/example" in next(line for line in printed.splitlines() if "chains:" in line)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not Path(f"/proc/{model_servers[0]}").exists() or (
        "app._llama_server" not in _cmdline(model_servers[0])
    )
