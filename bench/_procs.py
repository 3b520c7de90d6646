"""Child servers on free loopback ports, always torn down; their output goes to a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Server", "cpu_seconds", "cpu_seconds_of", "free_port", "spawn", "wait_until_up"]

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port that was free a moment ago (children must be told one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running child server."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The child's process id (for py-spy)."""
        return self.proc.pid


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll `url` until it answers below 500; fail with the child's log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def spawn(
    name: str, module_args: list[str], *, env: dict[str, str], port: int, log_dir: Path,
    health_path: str = "/healthz", startup_timeout: float = 90.0, root: Path = ROOT,
    python_args: tuple[str, ...] = ("-m",),
) -> Iterator[Server]:
    """Run `python -m <module_args>` (listening on `port`) until it answers; stop it after.

    It runs in `root` (another checkout, for before/after runs: its own code is imported);
    `python_args` replaces `-m` (e.g. `-c CODE`).

    Output goes to a file, not a pipe: an undrained pipe freezes a server that logs every
    request (uvicorn's access log) after a few hundred requests.

    Every server gets the same PYTHONHASHSEED (0 unless the environment sets one): with a
    random seed per process, two identical bare servers differed by 10% in CPU per request
    in one run; with one seed, three agreed within 3% (the bench's own spread).
    """
    log = log_dir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *python_args, *module_args], cwd=root,
            env={**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"), **env},
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(url + health_path, proc, log, startup_timeout)
        yield Server(name, url, proc, log)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s; always reaps the child."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(command: str) -> float:
    """Total CPU time of every process named `command` (e.g. the PostgreSQL server's)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == command:
                total += cpu_seconds(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total
