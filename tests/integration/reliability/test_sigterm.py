"""SIGTERM under load while PromptLayer is down, then a restart: every served log lands once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.integration.reliability.conftest import (
    BACKEND_KEY,
    Backend,
    LoadResult,
    run_load,
    wait_for,
)
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, process_output, serve_in_process


def _env(data_dir: Path, backend: Backend, llm_url: str, port: int) -> dict[str, str]:
    return {
        "PROMPTLAYER_BASE_URL": backend.url,
        "PROMPTLAYER_API_KEY": BACKEND_KEY,
        "OPENAI_BASE_URL": f"{llm_url}/v1",
        "OPENAI_API_KEY": "sk-test",
        "PROMPTSERVE_DATA_DIR": str(data_dir),
        "PROMPTSERVE_LOG_WAIT_SECONDS": "0.5",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }


def _spooled_lines(spool: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in spool.glob("*.jsonl")
               if p.stem.isdigit())


@pytest.mark.timeout(300)
async def test_sigterm_spools_in_flight_logs_and_a_restart_delivers_them(
    tmp_path: Path, backend: Backend, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    data_dir = tmp_path / "service"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load = LoadResult()
    with serve_in_process(["serve"], env=_env(data_dir, backend, fake_llm[1], port),
                          health_url=f"{url}/readyz", cwd=tmp_path) as proc:
        failures_before_sigterm: list[str] = []

        async def outage_then_sigterm() -> None:
            # Answers, not wall time, pace the phases: a slow machine gets longer phases
            # instead of too little load to test.
            await wait_for(lambda: len(load.answers) >= 40, timeout=60)
            await asyncio.to_thread(backend.server.stop)
            at_outage = len(load.answers)
            await wait_for(lambda: len(load.answers) >= at_outage + 40, timeout=60)
            failures_before_sigterm.extend(load.failures)
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 60)

        await asyncio.gather(
            run_load(url, seconds=150, stop=lambda: proc.poll() is not None, into=load),
            outage_then_sigterm(),
        )
        # uvicorn re-raises the signal once its shutdown is complete.
        assert proc.returncode in (0, -signal.SIGTERM), process_output(proc)
    # Until the SIGTERM, the outage costs the callers nothing.
    assert failures_before_sigterm == [], process_output(proc)
    output = process_output(proc)
    assert "Application shutdown complete" in output and "Traceback" not in output, output
    served = {answer["run_id"] for answer in load.answers}
    assert len(served) >= 80
    spooled = _spooled_lines(data_dir / "spool")
    assert spooled > 0, "nothing was spooled: the outage did not bite"
    assert len(backend.logs()) < len(served)

    backend.server.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_process(["serve"], env=_env(data_dir, backend, fake_llm[1], port),
                          health_url=f"{url}/readyz", cwd=tmp_path):
        await wait_for(lambda: {log["root"] for log in backend.logs()} >= served, timeout=60)
    logs = backend.logs()
    assert len({log["key"] for log in logs}) == len(logs)  # no duplicates
    assert {log["root"] for log in logs} == served
    print(f"SIGTERM FIGURES served={len(served)} spooled_at_exit={spooled} logs={len(logs)}")
