"""Chains follow the registry: a moved label is served after the refresh; a cold start with
the registry down serves the last good template from disk."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import yaml
from promptlayer import PromptLayer

from app.backend import create_backend_app
from app.config import Settings
from app.publishing import publish_directory
from app.service import create_app
from chains import TEMPLATES_DIR
from tests.integration.service.conftest import BACKEND_KEY, service_settings, write_templates
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread


def _invoke(url: str) -> httpx.Response:
    return httpx.post(f"{url}/example/invoke", json={"input": {"product": "boats"}}, timeout=30)


def _publish_v2(registry_url: str, key: str) -> None:
    template = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    blueprint = template["blueprint"]
    blueprint["messages"][-1]["content"][0]["text"] = "Name three colours of {product}."
    PromptLayer(api_key=key, base_url=registry_url).templates.publish(
        {
            "prompt_name": "example",
            "prompt_template": blueprint,
            "metadata": template["metadata"],
            "commit_message": "v2",
            "release_labels": ["prod"],
        }
    )


def test_a_moved_label_is_served_after_the_refresh(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    settings = service_settings(tmp_path, fake_llm[1], refresh_interval_seconds=0.2)
    with serve_in_thread(create_app(settings)) as url:
        assert _invoke(url).json()["output"].endswith("makes boats.")
        _publish_v2(f"{url}/promptlayer", BACKEND_KEY)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            body = _invoke(url).json()
            if body["output"] == "echo: Name three colours of boats.":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the new version was not served after the refresh")


def test_cold_start_with_the_registry_down_serves_from_disk(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    backend_settings = Settings(
        _env_file=None, data_dir=tmp_path / "backend", promptlayer_api_key=BACKEND_KEY
    )
    with serve_in_thread(create_backend_app(backend_settings, api_key=BACKEND_KEY)) as registry:
        publish_directory(
            write_templates(tmp_path / "seed"),
            client=PromptLayer(api_key=BACKEND_KEY, base_url=registry),
            progress=False,
        )
        settings = service_settings(
            tmp_path / "service",
            fake_llm[1],
            promptlayer_base_url=registry,
            log_wait_seconds=0.5,
        )
        with serve_in_thread(create_app(settings)) as url:
            assert _invoke(url).status_code == 200
    # The registry is gone now; a new process of the service starts from the disk copy.
    with serve_in_thread(create_app(settings)) as url:
        response = _invoke(url)
        assert response.status_code == 200
        assert response.json()["output"].endswith("makes boats.")
        assert httpx.get(f"{url}/readyz").status_code == 503
        assert httpx.get(f"{url}/healthz").status_code == 200


def _publish_critique(registry_url: str, text: str) -> None:
    """A new version of /critique's second prompt, labelled prod; the first stays as it is."""
    template = yaml.safe_load((TEMPLATES_DIR / "critique.yaml").read_text())
    blueprint = template["blueprint"]
    blueprint["messages"][-1]["content"][0]["text"] = text
    PromptLayer(api_key=BACKEND_KEY, base_url=registry_url).templates.publish(
        {"prompt_name": "critique", "prompt_template": blueprint,
         "metadata": template["metadata"], "release_labels": ["prod"]}
    )


def _critique(url: str) -> dict:
    response = httpx.post(f"{url}/critique/invoke", json={"input": {"product": "kites"}},
                          timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_one_prompt_of_a_chain_rolls_out_alone(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    settings = service_settings(tmp_path, fake_llm[1], refresh_interval_seconds=0.2)
    with serve_in_thread(create_app(settings)) as url:
        assert _critique(url)["metadata"]["promptlayer_prompt_versions"] == {
            "slogan": 1, "critique": 1}
        _publish_critique(f"{url}/promptlayer", "Judge this slogan: {slogan}")
        deadline = time.monotonic() + 15
        while (body := _critique(url))["output"]["critique"].startswith("echo: Critique"):
            assert time.monotonic() < deadline, "critique v2 was not served after the refresh"
            time.sleep(0.1)
        slogan = "echo: Write a slogan for kites."
        critique = f"echo: Judge this slogan: {slogan}"
        assert body["output"] == {"slogan": slogan, "critique": critique}
        assert body["metadata"]["promptlayer_prompt_versions"] == {"slogan": 1, "critique": 2}


def test_a_run_in_flight_keeps_the_versions_it_started_with(tmp_path: Path) -> None:
    # A slow model: the slogan streams for ~1.5 s, long enough for a refresh to land.
    fake = FakeOpenAI(stream_delay=0.2)
    with serve_in_thread(fake.app) as llm_url:
        settings = service_settings(tmp_path, llm_url, refresh_interval_seconds=0.1)
        with serve_in_thread(create_app(settings)) as url, httpx.stream(
            "POST", f"{url}/critique/stream", json={"input": {"product": "kites"}}, timeout=30
        ) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: metadata"  # the run has started
            _publish_critique(f"{url}/promptlayer", "Judge this slogan: {slogan}")
            time.sleep(0.6)  # several refreshes while the slogan still streams
            rest = list(lines)
            tail = [line for line in rest if line.startswith("data: ")][-1]
            summary = json.loads(tail.removeprefix("data: "))
            assert summary["promptlayer_prompt_versions"] == {"slogan": 1, "critique": 1}
            body = _critique(url)
            assert body["metadata"]["promptlayer_prompt_versions"] == {
                "slogan": 1, "critique": 2}
