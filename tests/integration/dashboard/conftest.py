"""The backend server of tests/integration/backend, on SQLite and PostgreSQL, with clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.backend.conftest import API_KEY, Backend, backend  # noqa: F401
from tests.utils.dashboard import sign_in


@pytest.fixture
def api(backend: Backend) -> Iterator[httpx.Client]:  # noqa: F811
    """A client sending the key in X-API-KEY (as scripts do)."""
    with httpx.Client(base_url=backend.url, headers={"X-API-KEY": API_KEY}) as client:
        yield client


@pytest.fixture
def browser_client(backend: Backend) -> Iterator[httpx.Client]:  # noqa: F811
    """A client signed in through the form, holding the session cookie."""
    with httpx.Client(base_url=backend.url) as client:
        assert sign_in(client, API_KEY).status_code == 303
        yield client


@pytest.fixture
def marker() -> str:
    """A tag value no other test uses (the server is shared by the module)."""
    return uuid.uuid4().hex[:10]
