"""Template files: loading, validation messages, and the unchanged-content comparison.

(Pure tests; they sit here because tests/unit/publishing is not created yet.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.publishing import (
    InvalidTemplatesError,
    TemplateFileError,
    is_unchanged,
    load_directory,
    load_template_file,
)
from chains import TEMPLATES_DIR

EXAMPLE = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())


def _write(tmp_path: Path, data: object, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_the_bundled_example_is_valid() -> None:
    template = load_template_file(TEMPLATES_DIR / "example.yaml")
    assert (template.name, template.release_labels) == ("example", ["prod"])
    body = template.publish_body()
    assert body["prompt_name"] == "example"
    assert body["metadata"]["model"]["name"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"name": None}, "name", "valid string"),
        ({"blueprnt": {}}, "blueprnt", "Extra inputs"),
        ({"commit_message": "x" * 73}, "commit_message", "at most 72"),
        ({"release_labels": "prod"}, "release_labels", "valid list"),
        ({"metadata": {}}, "metadata.model", "required"),
        (
            {"metadata": {"model": {"provider": "anthropic", "name": "claude"}}},
            "metadata.model.provider",
            "'anthropic' is not supported",
        ),
        (
            {"blueprint": {"type": "chat", "messages": [{"role": "usr", "content": []}]}},
            "blueprint.messages[0].role",
            "unknown role 'usr'",
        ),
        ({"blueprint": {"type": "embedding"}}, "blueprint.type", "unknown blueprint type"),
    ],
)
def test_invalid_files_name_file_and_field(
    tmp_path: Path, change: dict[str, object], field: str, reason: str
) -> None:
    path = _write(tmp_path, {**EXAMPLE, **change})
    with pytest.raises(TemplateFileError) as info:
        load_template_file(path)
    assert (info.value.file, info.value.field) == (path, field)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: {field}: ")


def test_yaml_errors_and_non_mappings(tmp_path: Path) -> None:
    with pytest.raises(TemplateFileError, match=r"t.yaml: line 2: invalid YAML"):
        load_template_file(_write(tmp_path, "name: a\nblueprint: {a: [1}\nx: 1\n"))
    with pytest.raises(TemplateFileError, match="expected a mapping"):
        load_template_file(_write(tmp_path, "- a list\n"))
    with pytest.raises(TemplateFileError, match="cannot read"):
        load_template_file(tmp_path / "missing.yaml")


def test_directory_lists_every_problem(tmp_path: Path) -> None:
    _write(tmp_path, EXAMPLE, "a.yaml")
    _write(tmp_path, EXAMPLE, "b.yml")
    _write(tmp_path, {**EXAMPLE, "name": ""}, "c.yaml")
    _write(tmp_path, "ignored", "notes.txt")
    _write(tmp_path, "ignored: [", ".hidden.yaml")
    with pytest.raises(InvalidTemplatesError) as info:
        load_directory(tmp_path)
    problems = [(e.file.name, e.field) for e in info.value.errors]
    assert problems == [("b.yml", "name"), ("c.yaml", "name")]
    assert "also the name in" in str(info.value).splitlines()[0]
    (tmp_path / "b.yml").unlink()
    (tmp_path / "c.yaml").unlink()
    assert [path.name for path, _ in load_directory(tmp_path)] == ["a.yaml"]


def test_unchanged_ignores_what_a_registry_fills_in(tmp_path: Path) -> None:
    template = load_template_file(TEMPLATES_DIR / "example.yaml")
    stored = {
        "prompt_template": {
            **template.blueprint,
            "input_variables": ["product"],
            "tools": None,
            "messages": [
                {**m, "input_variables": [], "name": None} for m in template.blueprint["messages"]
            ],
        },
        "metadata": {**template.metadata, "custom": None},
    }
    for message in stored["prompt_template"]["messages"]:
        message.pop("template_format")  # the default is f-string
    assert is_unchanged(stored, template)
    stored["metadata"] = {"model": {**template.metadata["model"], "name": "gpt-4o"}}
    assert not is_unchanged(stored, template)
