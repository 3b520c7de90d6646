"""The `promptserve` commands as a user runs them: real child processes, real SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from promptlayer import PromptLayer

from chains import TEMPLATES_DIR
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, process_output, serve_in_process, serve_in_thread


def _promptserve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backend_generates_its_key_once_and_serves_the_sdk(tmp_path: Path) -> None:
    port = free_port()
    env = {"PROMPTSERVE_DATA_DIR": str(tmp_path), "PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    with serve_in_process(["backend"], env=env, health_url=f"{url}/healthz") as first:
        key = (tmp_path / "backend_api_key").read_text().strip()
        client = PromptLayer(api_key=key, base_url=url)
        published = _promptserve(
            "publish",
            str(TEMPLATES_DIR),
            env={**env, "PROMPTLAYER_BASE_URL": url, "PROMPTLAYER_API_KEY": key},
        )
        assert published.returncode == 0, published.stderr
        template = client.templates.get("example", {"label": "prod"})
        assert template["version"] == 1
        again = _promptserve(
            "publish",
            str(TEMPLATES_DIR),
            env={**env, "PROMPTLAYER_BASE_URL": url, "PROMPTLAYER_API_KEY": key},
        )
        assert again.returncode == 0
        assert "skipped" in (again.stdout + again.stderr)
        assert client.templates.get("example")["version"] == 1
        assert httpx.post(f"{url}/create-group", json={"api_key": "wrong"}).status_code == 401
    assert process_output(first).count(key) == 1  # printed once, at creation
    with serve_in_process(["backend"], env=env, health_url=f"{url}/healthz") as second:
        pass
    assert key not in process_output(second)


def test_serve_answers_invoke_with_the_embedded_backend(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as llm:
        port = free_port()
        env = {
            "PROMPTSERVE_DATA_DIR": str(tmp_path),
            "PORT": str(port),
            "OPENAI_BASE_URL": f"{llm}/v1",
            "OPENAI_API_KEY": "sk-test",
        }
        url = f"http://127.0.0.1:{port}"
        with serve_in_process(["serve"], env=env, health_url=f"{url}/readyz") as proc:
            response = httpx.post(
                f"{url}/example/invoke", json={"input": {"product": "toasters"}}, timeout=30
            )
            assert response.status_code == 200, response.text
            assert isinstance(response.json()["metadata"]["promptlayer_request_id"], int)
            key = (tmp_path / "backend_api_key").read_text().strip()
            embedded = PromptLayer(api_key=key, base_url=f"{url}/promptlayer")
            assert embedded.templates.get("example")["prompt_name"] == "example"
        assert "start-up heap frozen" in process_output(proc)  # app.heap_freeze is wired in


def test_a_bad_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    result = _promptserve(
        "serve", env={"PROMPTSERVE_DATA_DIR": str(tmp_path), "DATABASE_URL": "mysql://x/y"}
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_serve_names_its_chains_once_it_answers(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as llm:
        port = free_port()
        env = {"PROMPTSERVE_DATA_DIR": str(tmp_path), "PORT": str(port),
               "OPENAI_BASE_URL": f"{llm}/v1", "OPENAI_API_KEY": "sk-test"}
        url = f"http://127.0.0.1:{port}"
        with serve_in_process(["serve"], env=env, health_url=f"{url}/readyz") as proc:
            deadline = time.monotonic() + 10
            while "serving on" not in process_output(proc) and time.monotonic() < deadline:
                time.sleep(0.1)
        output = process_output(proc)
    (banner,) = [line for line in output.splitlines() if line.startswith("  chains:")]
    assert banner.split()[1:5] == ["/critique", "/extract", "/tools", "/example"]
    # Printed after start-up, not before: the heap is frozen once the lifespan has run.
    assert output.index("start-up heap frozen") < output.index("serving on")


def test_a_missing_template_stops_serve_with_its_message_alone(tmp_path: Path) -> None:
    package = tmp_path / "own_chains"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mine.py").write_text(
        "from langchain_core.output_parsers import StrOutputParser\n"
        "from promptserve import Chain, RegistryPrompt\n"
        "CHAIN = Chain('/mine', RegistryPrompt('nosuch') | StrOutputParser())\n")
    env = {"PROMPTSERVE_DATA_DIR": str(tmp_path / "data"), "PORT": str(free_port()),
           "PYTHONPATH": str(tmp_path), "PROMPTSERVE_CHAINS_PACKAGE": "own_chains",
           "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-test"}
    done = _promptserve("serve", env=env)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "the registry did not give prompt 'nosuch'" in output
    assert "Traceback" not in output and "serving on" not in output
