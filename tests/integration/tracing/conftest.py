"""Real servers for tracing tests: the embedded backend and a fake OpenAI, each in a thread."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.backend import create_backend_app
from app.config import Settings
from promptserve.tracing import LogDelivery
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

API_KEY = "k"


@dataclass
class Backend:
    """A running embedded backend and a way to read what it stored."""

    url: str
    db_path: Path

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of a query on the backend's SQLite file, JSON columns decoded."""
        with sqlite3.connect(self.db_path) as connection:
            connection.row_factory = sqlite3.Row
            found = [dict(r) for r in connection.execute(sql, params)]
        for row in found:
            for key in ("input", "output", "parameters", "metadata", "prompt_input_variables"):
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
        return found

    def request(self, request_id: int) -> dict[str, Any]:
        """One stored request with its tags."""
        (row,) = self.rows("SELECT * FROM requests WHERE id = ?", request_id)
        tags = self.rows("SELECT tag FROM request_tags WHERE request_id = ?", request_id)
        row["tags"] = sorted(t["tag"] for t in tags)
        return row

    def publish(self, name: str, blueprint: dict[str, Any]) -> dict[str, Any]:
        """Publish a template version over HTTP; the backend's answer."""
        body = {"prompt_template": {"prompt_name": name, "tags": []},
                "prompt_version": {"prompt_template": blueprint, "metadata": {},
                                   "commit_message": "test"},
                "release_labels": None}
        response = httpx.post(f"{self.url}/rest/prompt-templates", json=body,
                              headers={"X-API-KEY": API_KEY})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    settings = Settings(data_dir=tmp_path, promptlayer_api_key=API_KEY)
    with serve_in_thread(create_backend_app(settings, api_key=API_KEY)) as url:
        yield Backend(url=url, db_path=tmp_path / "promptserve.db")


@pytest.fixture
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest.fixture
async def openai_http() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client for ChatOpenAI/OpenAI: langchain-openai caches its default one per
    base URL forever, which leaks sockets across tests' event loops."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def delivery(backend: Backend) -> AsyncIterator[LogDelivery]:
    delivery = LogDelivery(base_url=backend.url, api_key=API_KEY, total_budget=5.0,
                           backoff_initial=0.05)
    yield delivery
    await delivery.aclose()
