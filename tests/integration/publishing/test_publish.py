"""Publishing template files through the official SDK to the real embedded backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from langchain_core.messages import HumanMessage, SystemMessage
from promptlayer import PromptLayer
from rich.console import Console

from app.config import Settings
from app.publishing import (
    InvalidTemplatesError,
    embedded_registry_url,
    publish_directory,
    run_publish_command,
    seed_registry,
)
from promptserve import RegistryPrompt
from promptserve.prompts import build_chat_model, build_version, fetch_template
from promptserve.prompts.convert import prompt_from_template
from tests.integration.publishing.conftest import KEY
from tests.utils.servers import free_port


def _labelled(client: PromptLayer, label: str = "prod") -> int:
    found = client.templates.get("example", {"label": label, "skip_input_variable_rendering": True})
    return int(found["version"])


def _edit_user_text(templates: Path, text: str) -> None:
    path = templates / "example.yaml"
    data = yaml.safe_load(path.read_text())
    data["blueprint"]["messages"][-1]["content"][0]["text"] = text
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_publish_skip_change_and_invalid(client: PromptLayer, templates: Path) -> None:
    first = publish_directory(templates, client=client)
    assert [(r.name, r.status, r.version, r.detail) for r in first.results] == [
        ("example", "published", 1, "new template")
    ]
    assert _labelled(client) == 1

    again = publish_directory(templates, client=client)
    assert [(r.status, r.version, r.detail) for r in again.results] == [("skipped", 1, "unchanged")]

    _edit_user_text(templates, "A slogan for makers of {product}, please.")
    changed = publish_directory(templates, client=client)
    assert [(r.status, r.version, r.detail) for r in changed.results] == [
        ("published", 2, "changed")
    ]
    assert _labelled(client) == 2  # the label moved with the new version

    # One invalid file: nothing is published, not even the changed valid one.
    _edit_user_text(templates, "Changed again for {product}.")
    bad = yaml.safe_load((templates / "example.yaml").read_text())
    bad["name"] = "broken"
    bad["blueprint"]["messages"][1]["role"] = "usr"
    (templates / "broken.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(InvalidTemplatesError) as info:
        publish_directory(templates, client=client)
    (error,) = info.value.errors
    assert (error.file, error.field) == (templates / "broken.yaml", "blueprint.messages[1].role")
    assert str(error).startswith(f"{templates / 'broken.yaml'}: blueprint.messages[1].role: ")
    assert "unknown role 'usr'" in str(error)
    assert client.templates.get("example", {"skip_input_variable_rendering": True})["version"] == 2


def test_published_template_builds_the_chain(client: PromptLayer, templates: Path) -> None:
    publish_directory(templates, client=client)
    template = fetch_template(client, RegistryPrompt("example", label="prod"))
    assert template["prompt_template"]["input_variables"] == ["product"]
    version = build_version(
        template, lambda name, model: build_chat_model(model, api_key="sk-test", base_url=None)
    )
    assert version.input_type.model_json_schema()["required"] == ["product"]
    messages = prompt_from_template(template).invoke({"product": "toasters"}).to_messages()
    assert messages == [
        SystemMessage("You are a helpful copywriter. Answer with the slogan only."),
        HumanMessage("Write a one-sentence slogan for a company that makes toasters."),
    ]


def test_seed_publishes_only_missing_templates(client: PromptLayer, templates: Path) -> None:
    assert [r.status for r in seed_registry(templates, client).results] == ["published"]
    _edit_user_text(templates, "Another text for {product}.")
    seeded = seed_registry(templates, client)
    assert [(r.status, r.detail) for r in seeded.results] == [
        ("skipped", "already in the registry")
    ]
    assert _labelled(client) == 1


def _console() -> Console:
    return Console(record=True, width=200, force_terminal=False)


def test_command_prints_a_summary(registry_url: str, templates: Path, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        promptlayer_base_url=registry_url,
        promptlayer_api_key=KEY,
    )
    console = _console()
    assert run_publish_command(templates, settings, console=console) == 0
    assert run_publish_command(templates, settings, console=console) == 0
    output = console.export_text()
    assert "1 published, 0 skipped, 0 failed" in output
    assert "0 published, 1 skipped, 0 failed" in output


def test_command_refuses_an_invalid_folder(
    registry_url: str, templates: Path, tmp_path: Path
) -> None:
    (templates / "bad.yaml").write_text("name: bad\nblueprint: {type: chat, messages: []}\n")
    settings = Settings(_env_file=None, data_dir=tmp_path, promptlayer_api_key=KEY)
    console = _console()
    code = run_publish_command(templates, settings, base_url=registry_url, console=console)
    assert code == 1
    output = console.export_text()
    assert "bad.yaml: blueprint.messages: a chat template needs a non-empty list" in output
    assert "nothing was published" in output
    client = PromptLayer(api_key=KEY, base_url=registry_url)
    assert client.templates.all() == []


def test_command_reports_an_unreachable_registry(templates: Path, tmp_path: Path) -> None:
    (templates / "second.yaml").write_text(
        (templates / "example.yaml").read_text().replace("name: example", "name: second")
    )
    settings = Settings(_env_file=None, data_dir=tmp_path, promptlayer_api_key=KEY)
    console = _console()
    url = f"http://127.0.0.1:{free_port()}"
    assert run_publish_command(templates, settings, base_url=url, console=console) == 1
    output = console.export_text()
    assert "0 published, 0 skipped, 2 failed" in output
    assert "not attempted" in output


def test_command_defaults_to_the_embedded_backend(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, host="0.0.0.0", port=8123)
    assert embedded_registry_url(settings) == "http://127.0.0.1:8123/promptlayer"
    console = _console()
    assert run_publish_command(tmp_path / "missing", settings, console=console) == 2
    assert "is not a folder" in console.export_text()


def test_command_never_generates_a_key_and_says_where_it_looked(
    templates: Path, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", port=free_port())
    console = Console(record=True, width=80, force_terminal=False)
    assert run_publish_command(templates, settings, console=console) == 2
    output = console.export_text()
    assert not (tmp_path / "data" / "backend_api_key").exists()
    # Whole, on an 80-column terminal: where the key was looked for and what to do.
    flat = " ".join(output.split())
    assert f"no embedded backend key in {tmp_path / 'data' / 'backend_api_key'}" in flat
    assert "--url and --api-key" in flat


def test_command_uses_the_servers_key_and_prints_failures_whole(
    registry_url: str, templates: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "backend_api_key").write_text("wrong-key\n")
    port = free_port()  # no `promptserve serve` there: the registry is unreachable
    settings = Settings(_env_file=None, data_dir=data, port=port)
    console = Console(record=True, width=80, force_terminal=False)
    assert run_publish_command(templates, settings, console=console) == 1
    output = console.export_text()
    flat = " ".join(output.split())
    assert f"publishing to http://127.0.0.1:{port}/promptlayer" in flat
    assert f"with the API key kept in {data / 'backend_api_key'}" in flat
    # The first failure's whole reason on one line, however wide (rich's soft wrap).
    (line,) = [line for line in output.splitlines() if line.startswith("failed example.yaml")]
    assert "unreachable" in line and "Connection refused" in line and len(line) > 80, line
    assert "did not answer: is it running" in flat


def test_url_and_api_key_options(registry_url: str, templates: Path, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    console = _console()
    code = run_publish_command(templates, settings, base_url=registry_url, api_key=KEY,
                               console=console)
    assert code == 0
    assert "with the API key given with --api-key" in console.export_text()
    console = _console()
    assert run_publish_command(templates, settings, base_url=registry_url, console=console) == 2
    assert "no API key for" in console.export_text()
