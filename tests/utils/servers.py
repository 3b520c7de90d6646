"""Real servers for tests: uvicorn on an ephemeral port, in a thread or a child process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sse_starlette.sse import AppStatus


def free_port() -> int:
    """A port that was free a moment ago (for child processes that must be told one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1:0 in a thread; yield its base URL; always stop it."""
    # sse-starlette 1.x keeps one process-wide exit Event, bound to the first event loop
    # that streamed; each test server has its own loop, so start every server without it.
    AppStatus.should_exit_event = None
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server exited during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class ChildServer:
    """A server in a child process; its output goes to a file, so it can never block."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        """Everything the child printed so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serve_in_process(
    args: list[str],
    *,
    env: dict[str, str],
    health_url: str,
    cwd: Path | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[ChildServer]:
    """Run the `promptserve` CLI with `args` in a child process until `health_url` answers."""
    full_env = {**os.environ, **env}
    with tempfile.NamedTemporaryFile(prefix="promptserve-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=full_env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    child = ChildServer(proc, log_path)
    try:
        wait_until_up(health_url, proc=proc, log_path=log_path, timeout=startup_timeout)
        yield child
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until_up(
    url: str,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    timeout: float = 60.0,
) -> None:
    """Poll `url` until it answers below 500; fail with the child's output if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = log_path.read_text(errors="replace") if log_path else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{output}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")
