"""Reliability tests: a PromptLayer-compatible backend that can go away, load, and counting.

The backend is the embedded one served on its own (as `promptserve backend` would), and the
service reaches it in external mode through PROMPTLAYER_BASE_URL, exactly like the hosted
PromptLayer. Every test is bounded in time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from promptlayer import PromptLayer

from app.backend import create_backend_app
from app.config import Settings
from app.publishing import seed_registry
from tests.integration.service.conftest import write_templates
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import RestartableServer, serve_in_thread

BACKEND_KEY = "reliability-backend-key"
SERVICE_KEY = "reliability-service-key"


@pytest.fixture(autouse=True)
def _fresh_sse_exit_event() -> Iterator[None]:
    """sse-starlette keeps one process-global exit Event, bound to the first event loop that
    streams; test servers each have their own loop, so forget it around every test."""
    from sse_starlette.sse import AppStatus

    AppStatus.should_exit_event = None
    yield
    AppStatus.should_exit_event = None


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, url


@dataclass
class Backend:
    """A stoppable embedded backend on a fixed port, and its SQLite file."""

    server: RestartableServer
    settings: Settings
    engine: sa.Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.settings.sqlalchemy_url)

    @property
    def url(self) -> str:
        return self.server.url

    def logs(self) -> list[dict[str, Any]]:
        """Every stored log: id, idempotency key, root run id."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, idempotency_key, metadata FROM requests")
            ).all()
        found = []
        for request_id, key, metadata in rows:
            meta = metadata if isinstance(metadata, dict) else __import__("json").loads(metadata)
            found.append({"id": request_id, "key": key,
                          "root": meta.get("_langchain_root_run_id")})
        return found

    def scores(self) -> dict[int, dict[str, int]]:
        """Stored scores per request id."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT request_id, name, score FROM scores")).all()
        found: dict[int, dict[str, int]] = {}
        for request_id, name, score in rows:
            found.setdefault(request_id, {})[name] = score
        return found


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "backend",
                        promptlayer_api_key=BACKEND_KEY)
    server = RestartableServer(create_backend_app(settings, api_key=BACKEND_KEY))
    server.start()
    seed_registry(write_templates(tmp_path / "templates"),
                  PromptLayer(api_key=BACKEND_KEY, base_url=server.url))
    found = Backend(server, settings)
    try:
        yield found
    finally:
        server.stop()
        found.engine.dispose()


def external_settings(data_dir: Path, backend_url: str, llm_url: str, **extra: Any) -> Settings:
    """Service settings pointing at a separate backend (external mode)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "promptlayer_base_url": backend_url,
        "promptlayer_api_key": BACKEND_KEY,
        "openai_base_url": f"{llm_url}/v1",
        "openai_api_key": "sk-test",
        "api_keys": [SERVICE_KEY],
        "refresh_interval_seconds": 3600,
        **extra,
    }
    return Settings(_env_file=None, **values)


@dataclass
class LoadResult:
    """What a load run saw."""

    answers: list[dict[str, Any]] = field(default_factory=list)  # metadata of 200 answers
    failures: list[str] = field(default_factory=list)


async def run_load(
    url: str,
    *,
    seconds: float,
    clients: int = 8,
    stop: Callable[[], bool] | None = None,
    on_answer: Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[None]] | None = None,
    into: LoadResult | None = None,
) -> LoadResult:
    """`clients` loops POSTing /example/invoke for `seconds` (or until `stop()`); `into`
    lets the caller watch the result while the load runs."""
    result = into if into is not None else LoadResult()
    deadline = time.monotonic() + seconds

    async def client_loop(n: int) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            i = 0
            while time.monotonic() < deadline and not (stop and stop()):
                i += 1
                try:
                    response = await client.post(
                        f"{url}/example/invoke", json={"input": {"product": f"p{n}-{i}"}})
                except httpx.HTTPError as error:
                    result.failures.append(f"{type(error).__name__}")
                    continue
                if response.status_code != 200:
                    result.failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                metadata = response.json()["metadata"]
                result.answers.append(metadata)
                if on_answer is not None:
                    await on_answer(client, metadata)

    await asyncio.gather(*(client_loop(n) for n in range(clients)))
    return result


async def wait_for(probe: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> float:
    """Seconds until `probe()` held; fails after `timeout`."""
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not reached within {timeout} s: {probe!r}")
        await asyncio.sleep(interval)
    return time.monotonic() - started
