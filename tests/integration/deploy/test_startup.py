"""`promptserve serve` refuses to start with a bad setting or a missing model, and says why."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.integration.deploy.conftest import run_cli


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {**keep, "PROMPTSERVE_DATA_DIR": str(tmp_path / "data"), **values}


def test_an_unparsable_database_url_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = _env(tmp_path, DATABASE_URL="postgresql://user@db:notaport/promptserve",
               OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    result = run_cli(["serve", "--port", "0"], env)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "cannot be parsed" in result.stderr


def test_a_bad_number_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = _env(tmp_path, PORT="eighty", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    result = run_cli(["serve"], env)
    assert result.returncode == 2
    assert "setting PORT" in result.stderr


def test_a_missing_local_model_stops_serve_quickly_with_the_reason(tmp_path: Path) -> None:
    env = _env(tmp_path, PROMPTSERVE_LOCAL_MODEL_PATH=str(tmp_path / "missing.gguf"))
    started = time.monotonic()
    result = run_cli(["serve", "--port", "0"], env)
    assert result.returncode == 1
    assert "cannot start the local model" in result.stderr
    assert "missing.gguf does not exist" in result.stderr
    assert time.monotonic() - started < 30


def test_a_crashing_local_model_server_stops_serve_with_its_log(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    env = _env(tmp_path, PROMPTSERVE_LOCAL_MODEL_PATH=str(bogus),
               PROMPTSERVE_LOCAL_MODEL_STARTUP_SECONDS="20")
    result = run_cli(["serve", "--port", "0"], env, timeout=60)
    assert result.returncode == 1
    assert "cannot start the local model" in result.stderr
    assert "exited with status" in result.stderr
