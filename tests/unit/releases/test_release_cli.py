"""`promptserve release`'s option parsing and its refusal to make up a key (the commands
against a real backend: tests/integration/cli/test_release_cli.py)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from app.cli import cli
from app.releases.cli import parse_arms, parse_segments


def test_parse_arms_and_segments() -> None:
    assert parse_arms(["3=50", " 4 = 50"]) == [
        {"version": 3, "weight": 50},
        {"version": 4, "weight": 50},
    ]
    assert parse_segments(["plan=pro:4=100", "plan=team:3=20,4=80"]) == {
        "key": "plan",
        "values": {
            "pro": [{"version": 4, "weight": 100}],
            "team": [{"version": 3, "weight": 20}, {"version": 4, "weight": 80}],
        },
    }
    assert parse_segments([]) is None
    for bad in (["plan:4=100"], ["plan=pro"], ["plan=pro:4"]):
        with pytest.raises(typer.BadParameter):
            parse_segments(bad)
    with pytest.raises(typer.BadParameter, match="one metadata key"):
        parse_segments(["plan=pro:4=100", "tier=gold:3=100"])
    with pytest.raises(typer.BadParameter, match="VERSION=WEIGHT"):
        parse_arms(["v3=50"])


def test_no_key_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("PROMPTSERVE_DATA_DIR", str(tmp_path))
    answer = CliRunner().invoke(cli, ["release", "list", "--url", "http://backend"])
    assert answer.exit_code == 2
    assert "no API key for http://backend" in answer.stderr
    assert not (tmp_path / "backend_api_key").exists()  # never made up on the client
