"""The seed documents' scripts, run as separate processes from a team's own project (one with
its own `app` and `chains` packages) against a real backend and the fake model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from promptlayer import PromptLayer

from app.backend import create_backend_app
from app.config import Settings
from app.publishing import publish_directory
from tests.integration.service.conftest import write_templates
from tests.integration.tracing.conftest import Backend
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, serve_in_thread

KEY = "scripts-backend-key"


@dataclass
class Project:
    """A team's project folder and the environment its scripts run with."""

    directory: Path
    env: dict[str, str]
    backend: Backend

    def run(self, name: str, source: str, *, timeout: float = 60,
            **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
        """Write `source` as `name` in the project and run it; (result, seconds taken)."""
        script = self.directory / name
        script.write_text(source)
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(script)], cwd=self.directory,
                              env={**self.env, **env}, capture_output=True, text=True,
                              timeout=timeout)
        return done, time.monotonic() - started


@pytest.fixture(scope="module")
def fake_model() -> Iterator[str]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield url


@pytest.fixture
def project(tmp_path: Path, fake_model: str) -> Iterator[Project]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "backend", promptlayer_api_key=KEY)
    with serve_in_thread(create_backend_app(settings, api_key=KEY)) as url:
        publish_directory(write_templates(tmp_path / "seed"),
                          client=PromptLayer(api_key=KEY, base_url=url), progress=False)
        directory = tmp_path / "team"
        for package in ("app", "chains"):  # names the team's project uses for itself
            (directory / package).mkdir(parents=True)
            (directory / package / "__init__.py").write_text(f'NAME = "the team\'s {package}"\n')
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "PROMPTLAYER_", "PROMPTSERVE_"))}
        env.update(PROMPTLAYER_API_KEY=KEY, PROMPTLAYER_BASE_URL=url,
                   OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"{fake_model}/v1",
                   PYTHONPATH="")
        yield Project(directory, env, Backend(url, settings.data_dir / "promptserve.db"))


def unreachable_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"
