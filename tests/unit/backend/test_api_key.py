"""resolve_backend_api_key: configured key, or one generated once and printed once."""

from __future__ import annotations

from pathlib import Path

import pytest

import app.backend
from app.backend import create_backend_app, resolve_backend_api_key
from app.config import Settings


def test_exports() -> None:
    assert sorted(app.backend.__all__) == ["create_backend_app", "resolve_backend_api_key"]
    assert callable(create_backend_app)


def test_configured_key_wins(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, promptlayer_api_key="mine")
    assert resolve_backend_api_key(settings) == "mine"
    assert not (tmp_path / "backend_api_key").exists()


def test_generated_once_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "d")
    first = resolve_backend_api_key(settings)
    printed = capsys.readouterr().err
    assert first.startswith("pl_") and first in printed
    assert resolve_backend_api_key(settings) == first
    assert capsys.readouterr().err == ""
    assert (tmp_path / "d" / "backend_api_key").read_text().strip() == first
