"""A real backend server per database (SQLite file, throwaway PostgreSQL), shared by a module."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from promptlayer import AsyncPromptLayer, PromptLayer

from app.backend import create_backend_app
from app.backend.store import Store
from app.config import Settings
from tests.utils.databases import throwaway_postgres_database
from tests.utils.servers import serve_in_thread

API_KEY = "test-key"


@dataclass
class Backend:
    """A running backend: its URL and its store (to check what landed)."""

    url: str
    store: Store
    database: str

    def read(self, fn: Any) -> Any:
        return self.store.read_sync(fn)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with contextlib.ExitStack() as stack:
        database_url = None
        if request.param == "postgresql":
            database_url = stack.enter_context(throwaway_postgres_database())
        # Explicit values beat the environment and `.env` (module fixtures run before the
        # autouse environment cleanup).
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path_factory.mktemp("backend"),
            database_url=database_url,
            promptlayer_api_key=API_KEY,
        )
        app = create_backend_app(settings, api_key=API_KEY)
        url = stack.enter_context(serve_in_thread(app))
        yield Backend(url=url, store=app.state.store, database=request.param)


@pytest.fixture
def pl(backend: Backend) -> PromptLayer:
    return PromptLayer(api_key=API_KEY, base_url=backend.url)


@pytest.fixture
def apl(backend: Backend) -> AsyncPromptLayer:
    return AsyncPromptLayer(api_key=API_KEY, base_url=backend.url)


@pytest.fixture
def name() -> str:
    """A prompt name no other test uses (the server is shared by the module); has a '/'."""
    return f"team/prompt-{uuid.uuid4().hex[:8]}"


def chat(text: str, *, template_format: str = "f-string") -> dict[str, Any]:
    """A one-message chat blueprint."""
    return {
        "type": "chat",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {
                "role": "user",
                "template_format": template_format,
                "content": [{"type": "text", "text": text}],
            },
        ],
    }


OPENAI_MODEL = {
    "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {"temperature": 0.2}}
}
