"""Shared fixtures: a clean environment for every test, and throwaway PostgreSQL databases."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.utils.databases import throwaway_postgres_database

# Variables promptserve reads; a developer's shell must not leak into a test.
_OUR_VARIABLES = (
    "PROMPTLAYER_API_KEY",
    "PROMPTLAYER_BASE_URL",
    "DATABASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "HOST",
    "PORT",
)


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name in _OUR_VARIABLES or name.startswith("PROMPTSERVE_"):
            monkeypatch.delenv(name, raising=False)
    # pydantic-settings reads `.env` from the working directory: run tests elsewhere.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database that is dropped after the test."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_sse_exit_event() -> None:
    # sse-starlette keeps one process-wide exit Event, bound to the event loop of the first
    # stream; each test server runs its own loop, so let the next stream make a new one.
    from sse_starlette.sse import AppStatus

    AppStatus.should_exit_event = None
