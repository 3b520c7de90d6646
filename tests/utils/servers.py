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
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    """A port that was free a moment ago (for child processes that must be told one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1:0 in a thread; yield its base URL; always stop it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            http="h11")  # as the product serves (app/cli.py)
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


@contextlib.contextmanager
def serve_in_process(
    args: list[str],
    *,
    env: dict[str, str],
    health_url: str,
    cwd: Path | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the `promptserve` CLI with `args` in a child process until `health_url` answers.

    Output goes to a temporary file (`proc.output_path`), never a pipe: a pipe nobody reads
    fills up and blocks a chatty child.
    """
    full_env = {**os.environ, **env}
    with tempfile.NamedTemporaryFile(prefix="promptserve-", suffix=".log", delete=False) as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=full_env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.output_path = Path(out.name)  # type: ignore[attr-defined]
    try:
        wait_until_up(health_url, proc=proc, timeout=startup_timeout)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until_up(
    url: str, *, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0
) -> None:
    """Poll `url` until it answers below 500; fail with the child's output if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{process_output(proc)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def process_output(proc: subprocess.Popen[bytes]) -> str:
    """What a `serve_in_process` child wrote so far (stdout and stderr)."""
    path = getattr(proc, "output_path", None)
    if path is not None:
        return Path(path).read_text(errors="replace")
    return proc.stdout.read().decode(errors="replace") if proc.stdout else ""


class RestartableServer:
    """`app` under uvicorn in a thread on one fixed port, to stop and start again (outages)."""

    def __init__(self, app: Any, *, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Serve until `stop`; returns once the port answers."""
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on", http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Close the listener and every connection; the port refuses connections after."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._server = self._thread = None
