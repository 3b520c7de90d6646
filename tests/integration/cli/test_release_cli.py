"""`promptserve release ...` against a real backend over HTTP: split, show, promote, roll back,
and errors printed whole with a non-zero exit."""

# ruff: noqa: F811  (the `backend` fixture is imported, then named by each test)

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.integration.backend.conftest import API_KEY, Backend, backend  # noqa: F401
from tests.utils.releases import (
    HIGH_SCORES,
    LOW_SCORES,
    log_scored,
    publish_two_versions,
    release_path,
)


@pytest.fixture
def api(backend: Backend) -> Any:
    with httpx.Client(base_url=backend.url, headers={"X-API-KEY": API_KEY}) as client:
        yield client


@pytest.fixture
def name(api: httpx.Client) -> str:
    """A template with v1 (on prod) and v2; its name has a '/'."""
    found = f"team/cli-{uuid.uuid4().hex[:8]}"
    publish_two_versions(api, found)
    return found


def run(backend: Backend, *args: str, key: str = API_KEY) -> Any:
    """The command in-process, with explicit --url and --api-key (nothing from the env)."""
    command, *rest = args
    full = ["release", command, *rest, "--url", backend.url, "--api-key", key]
    return CliRunner().invoke(cli, full, catch_exceptions=False)


def test_split_show_promote(backend: Backend, api: httpx.Client, name: str) -> None:
    made = run(backend, "split", name, "prod", "--arm", "1=50", "--arm", "2=50", "--json")
    assert made.exit_code == 0, made.output + made.stderr
    split = json.loads(made.stdout)
    assert split["control"] == 1 and [a["version"] for a in split["arms"]] == [1, 2]
    history = api.get(release_path(name, "prod")).json()["history"]
    assert history[0]["action"] == "split" and history[0]["by"].startswith("cli (…")

    log_scored(api, name, split, 1, LOW_SCORES)
    log_scored(api, name, split, 2, HIGH_SCORES)
    shown = run(backend, "show", name, "prod")
    assert shown.exit_code == 0, shown.output + shown.stderr
    text = shown.stdout
    assert "v1 (control)" in text and "v2 (challenger)" in text
    assert "85.0" in text and "15" in text
    assert "v2: better" in text
    assert "Better: v2 scores higher than v1" in " ".join(text.split())
    assert "split set" in text

    listed = run(backend, "list")
    assert listed.exit_code == 0 and name in listed.stdout

    promoted = run(backend, "promote", name, "prod")  # default: the challenger judged better
    assert promoted.exit_code == 0, promoted.stderr
    assert "→ v2" in promoted.stdout
    state = api.get(release_path(name, "prod")).json()
    assert state["split"] is None and state["version"] == 2


def test_split_with_segments_then_rollback(
    backend: Backend,
    api: httpx.Client,
    name: str,
) -> None:
    made = run(
        backend,
        "split",
        name,
        "prod",
        "--arm",
        "1=90",
        "--arm",
        "2=10",
        "--control",
        "1",
        "--segment",
        "plan=pro:2=100",
        "--guardrail",
    )
    assert made.exit_code == 0, made.stderr
    assert "v1 90 % (control) · v2 10 %" in made.stdout and "plan=pro: v2 100 %" in made.stdout
    split = api.get(release_path(name, "prod")).json()["split"]
    assert split["segments"] == {"key": "plan", "values": {"pro": [{"version": 2, "weight": 100}]}}
    assert split["guardrail"] is True

    rolled = run(backend, "rollback", name, "prod")
    assert rolled.exit_code == 0, rolled.stderr
    assert "→ v1 (the control)" in rolled.stdout
    state = api.get(release_path(name, "prod")).json()
    assert state["split"] is None and state["version"] == 1
    assert [row["action"] for row in state["history"][:2]] == ["rollback", "split"]


def test_end_keeps_the_control(backend: Backend, api: httpx.Client, name: str) -> None:
    assert run(backend, "split", name, "prod", "--arm", "1=50", "--arm", "2=50").exit_code == 0
    ended = run(backend, "end", name, "prod")
    assert ended.exit_code == 0, ended.stderr
    state = api.get(release_path(name, "prod")).json()
    assert state["split"] is None and state["version"] == 1


def test_refusals_are_printed_whole(backend: Backend, name: str) -> None:
    bad = run(backend, "split", name, "prod", "--arm", "1=60", "--arm", "2=50")
    assert bad.exit_code == 1 and "(HTTP 400)" in bad.stderr
    assert bad.stderr.startswith("promptserve release: error: ")
    nothing = run(backend, "promote", name, "prod")
    assert nothing.exit_code == 1 and "(HTTP 409)" in nothing.stderr
    assert "promptserve release show" in nothing.stderr
    malformed = run(backend, "split", name, "prod", "--arm", "one=50")
    assert malformed.exit_code == 2 and "VERSION=WEIGHT" in malformed.output + malformed.stderr


def test_a_wrong_key_says_what_to_do_in_full(backend: Backend, name: str) -> None:
    # A real child process, as a person runs it, in a narrow terminal.
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "release",
            "show",
            name,
            "prod",
            "--url",
            backend.url,
            "--api-key",
            "wrong-key",
        ],
        env={**os.environ, "COLUMNS": "40"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 1
    [line] = answer.stderr.strip().splitlines()
    assert line.startswith("promptserve release: error: ")
    assert "(HTTP 401)" in line
    assert (
        f"The backend at {backend.url} refused the API key. Pass the backend's key with "
        "--api-key or PROMPTLAYER_API_KEY" in line
    )
    assert "wrong-key" not in answer.stderr + answer.stdout


def test_no_backend_there() -> None:
    from tests.utils.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    answer = CliRunner().invoke(cli, ["release", "list", "--url", url, "--api-key", "k"])
    assert answer.exit_code == 1
    assert f"Cannot reach the backend at {url}" in answer.stderr
    assert "--url or PROMPTLAYER_BASE_URL" in answer.stderr


def test_env_fallbacks(backend: Backend, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAYER_BASE_URL", backend.url)
    monkeypatch.setenv("PROMPTLAYER_API_KEY", API_KEY)
    shown = CliRunner().invoke(cli, ["release", "show", name, "prod"])
    assert shown.exit_code == 0, shown.stderr
    assert "not split, on v1" in shown.stdout
