"""Shared fixtures: a clean environment for every test, and throwaway PostgreSQL databases;
and the session-wide check that every traced log fits the hosted PromptLayer schema.

That check: the embedded backend fits every log it receives to the hosted `LogRequest`
schema and warns about each one it had to cut (app.backend.api.requests, extras
`hosted_schema_removed` and `langchain_run_id`). A handler on that logger collects the
warnings about traced logs (those with a LangChain run id: what our tracer produced, not the
hand-written bodies the backend tests send on purpose) from every backend running in this
process, in threads or in-process; the test during which they came fails at teardown, and
any that come after the last test fail the session. Backends in child processes are not
watched: their warnings go to the child's log. A test that sends such logs on purpose says
so with `@pytest.mark.unfit_logs`.
"""

from __future__ import annotations

import logging
import os
import threading
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
    # Delivery reads the proxy and CA variables, as the SDK's clients do.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name in _OUR_VARIABLES or name.startswith("PROMPTSERVE_") or \
                name.lower() in _PROXY_VARIABLES:
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


_BACKEND_LOGGER = "app.backend.api.requests"


class _UnfitLogs(logging.Handler):
    """Collects the backend's warnings about traced logs it had to cut to the hosted schema."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._found: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "hosted_schema_removed", None) and getattr(
            record, "langchain_run_id", None
        ):
            with self._guard:
                self._found.append(record.getMessage())

    def take(self) -> list[str]:
        with self._guard:
            found, self._found = self._found, []
        return found


_unfit_logs = pytest.StashKey[_UnfitLogs]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "unfit_logs: sends traced logs the hosted PromptLayer schema refuses, "
        "on purpose (the session check lets them be)")
    watch = _UnfitLogs()
    logging.getLogger(_BACKEND_LOGGER).addHandler(watch)
    config.stash[_unfit_logs] = watch


def pytest_unconfigure(config: pytest.Config) -> None:
    watch = config.stash.get(_unfit_logs, None)
    if watch is not None:
        logging.getLogger(_BACKEND_LOGGER).removeHandler(watch)


def _unfit_report(found: list[str]) -> str:
    lines = "\n".join(f"  {line}" for line in found[:20])
    more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
    return (f"{len(found)} traced log(s) did not fit the hosted PromptLayer LogRequest schema "
            f"(the embedded backend stored them cut):\n{lines}{more}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    found = item.config.stash[_unfit_logs].take()
    if found and item.get_closest_marker("unfit_logs") is None:
        pytest.fail(_unfit_report(found), pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    watch = session.config.stash.get(_unfit_logs, None)
    found = watch.take() if watch is not None else []
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(_unfit_report(found), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
