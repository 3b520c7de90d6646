"""A real promptserve (embedded backend included) and a fake OpenAI server, on free ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi import FastAPI

from app.backend.store.engine import make_engine
from app.backend.store.requests import get_request
from app.config import Settings
from app.service import create_app, discover_chains
from chains import TEMPLATES_DIR
from promptserve import Chain, RegistryPrompt
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

SERVICE_KEY = "service-key-for-tests"
BACKEND_KEY = "backend-key-for-tests"


@dataclass
class Service:
    """A running promptserve and what the tests need to look inside it."""

    url: str
    app: FastAPI
    settings: Settings
    fake: FakeOpenAI
    engine: sa.Engine

    def linked_prompt(self, request_id: int) -> tuple[str, int] | None:
        """The registry prompt (name, version) the stored request is linked to."""
        query = sa.text(
            "SELECT t.name, v.version FROM requests r JOIN prompt_versions v "
            "ON v.id = r.prompt_version_id JOIN prompt_templates t ON t.id = v.template_id "
            "WHERE r.id = :id"
        )
        with self.engine.connect() as connection:
            row = connection.execute(query, {"id": request_id}).first()
        return (row[0], row[1]) if row is not None else None

    def stored_request(self, request_id: int) -> dict[str, Any]:
        """The request as the embedded backend stored it."""
        with self.engine.connect() as connection:
            found = get_request(connection, request_id=request_id)
        assert found is not None, f"request {request_id} is not in the store"
        return found


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, url


def write_templates(directory: Path) -> Path:
    """The bundled templates, a `failing` one (served at /failing) whose model always
    answers 500, and `extract_misfit`, whose model's JSON never fits its schema."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in TEMPLATES_DIR.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    failing = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    failing["name"] = "failing"
    failing["metadata"]["model"]["name"] = "fail-500"
    failing["serve"] = {"path": "/failing"}
    (directory / "failing.yaml").write_text(yaml.safe_dump(failing))
    # `extract` with a model whose JSON never fits the schema (tests/utils/fake_openai.py).
    misfit = yaml.safe_load((TEMPLATES_DIR / "extract.yaml").read_text())
    misfit["name"] = "extract_misfit"
    misfit["metadata"]["model"]["name"] = "badjson-model"
    (directory / "extract_misfit.yaml").write_text(yaml.safe_dump(misfit))
    return directory


# /extract_misfit: chains/extract.py's chain on the template whose model answers misfits.
MISFIT = Chain("/extract_misfit", RegistryPrompt("extract_misfit").structured())


def service_settings(data_dir: Path, llm_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "templates_dir": write_templates(data_dir / "seed"),
        "promptlayer_api_key": BACKEND_KEY,
        "openai_base_url": f"{llm_url}/v1",
        "openai_api_key": "sk-test",
        "api_keys": [SERVICE_KEY],
        "refresh_interval_seconds": 3600,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, fake_llm: tuple[FakeOpenAI, str]
) -> Iterator[Service]:
    fake, llm_url = fake_llm
    settings = service_settings(tmp_path_factory.mktemp("service"), llm_url)
    chains = [*discover_chains(templates_dir=settings.templates_dir), MISFIT]
    app = create_app(settings, chains=chains)
    engine = make_engine(settings.sqlalchemy_url)
    with serve_in_thread(app) as url:
        yield Service(url, app, settings, fake, engine)
    engine.dispose()
