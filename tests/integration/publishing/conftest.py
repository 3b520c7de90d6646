"""The real embedded backend on an ephemeral port, and a copy of the bundled templates."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from promptlayer import PromptLayer

from app.backend import create_backend_app
from app.config import Settings
from chains import TEMPLATES_DIR
from tests.utils.servers import serve_in_thread

KEY = "publishing-test-key"


@pytest.fixture
def registry_url(tmp_path: Path) -> Iterator[str]:
    """Base URL of a fresh, empty embedded registry."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "backend", promptlayer_api_key=KEY)
    with serve_in_thread(create_backend_app(settings, api_key=KEY)) as url:
        yield url


@pytest.fixture
def client(registry_url: str) -> PromptLayer:
    """The official sync SDK client, pointed at the embedded registry."""
    return PromptLayer(api_key=KEY, base_url=registry_url)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A folder holding a writable copy of chains/templates/example.yaml."""
    directory = tmp_path / "templates"
    directory.mkdir()
    shutil.copy(TEMPLATES_DIR / "example.yaml", directory / "example.yaml")
    return directory
