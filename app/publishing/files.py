"""Template files: YAML that describes one registry prompt, validated before anything is sent.

Format (one template per `*.yaml` / `*.yml` file in a folder)::

    name: example                  # registry prompt name (required, < 128 characters)
    commit_message: Slogan writer  # optional, at most 72 characters
    release_labels: [prod]         # labels moved to the new version (default: none)
    tags: [example]                # optional template tags
    blueprint:                     # a PromptLayer prompt_template (docs/PROMPTLAYER_API.md §4)
      type: chat                   # or `completion` (then `content:` and `template_format:`)
      messages:
        - role: system             # system, developer, user, assistant, tool, function,
          content:                 # or placeholder (`name:` only)
            - {type: text, text: You are a helpful copywriter.}
        - role: user
          template_format: f-string   # default; or jinja2
          content:
            - {type: text, text: "Write a slogan for a company that makes {product}."}
    metadata:
      model: {provider: openai, name: gpt-4o-mini, parameters: {temperature: 0.7}}
    serve:                         # optional: serve `prompt | model | parser` at a route
      path: /example               # the route
      output: text                 # text (default) or json
      label: prod                  # optional: the release label served (default: prod),
                                   # or `version: 3` for a fixed version

`input_variables` may be left out: they are computed. A file is valid only if promptserve
can build a chain from it (blueprint converts, model metadata is usable), so a published
template never fails a later start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promptserve.prompts.convert import prompt_from_blueprint
from promptserve.prompts.errors import TemplateConversionError
from promptserve.prompts.model import chat_model_arguments

__all__ = [
    "InvalidTemplatesError",
    "ServeSection",
    "TemplateFile",
    "TemplateFileError",
    "load_directory",
    "load_template_file",
    "template_paths",
]


class TemplateFileError(ValueError):
    """One invalid template file; the message names the file and the field."""

    def __init__(self, file: Path, field: str, reason: str) -> None:
        self.file = file
        self.field = field
        self.reason = reason
        super().__init__(f"{file}: {field}: {reason}" if field else f"{file}: {reason}")


class InvalidTemplatesError(ValueError):
    """Some files of a folder are invalid (every one of them is listed)."""

    def __init__(self, errors: Iterable[TemplateFileError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class ServeSection(BaseModel):
    """A template file's own route: the YAML-only chain `prompt | model | parser`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(pattern=r"^(/[A-Za-z0-9_-]+)+$")
    output: Literal["text", "json"] = "text"
    label: str | None = Field(default=None, min_length=1)
    version: int | None = Field(default=None, ge=1)
    name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_selector(self) -> ServeSection:
        if self.label is not None and self.version is not None:
            raise ValueError("give a release label or a version, not both")
        return self


class TemplateFile(BaseModel):
    """One template file, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=127)
    blueprint: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict)
    release_labels: list[str] = Field(default_factory=list)
    commit_message: str | None = Field(default=None, max_length=72)
    tags: list[str] = Field(default_factory=list)
    serve: ServeSection | None = None

    def publish_body(self) -> dict[str, Any]:
        """The SDK's `templates.publish` argument for this file."""
        return {
            "prompt_name": self.name,
            "prompt_template": self.blueprint,
            "metadata": self.metadata,
            "commit_message": self.commit_message,
            "tags": self.tags,
            "release_labels": self.release_labels,
        }


def template_paths(directory: Path) -> list[Path]:
    """The template files of a folder (not recursive, hidden files skipped), sorted by name."""
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.suffix in (".yaml", ".yml") and not path.name.startswith(".")
    )


def load_template_file(path: Path) -> TemplateFile:
    """Read and validate one file; TemplateFileError names the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateFileError(path, "", f"cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateFileError(path, where, f"invalid YAML: {problem}") from exc
    if not isinstance(data, Mapping):
        raise TemplateFileError(path, "", "expected a mapping with name, blueprint and metadata")
    try:
        template = TemplateFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TemplateFileError(path, _dotted(first["loc"]), first["msg"]) from exc
    _check_servable(path, template)
    return template


def _check_servable(path: Path, template: TemplateFile) -> None:
    try:
        prompt_from_blueprint(template.blueprint, template_name=template.name)
        model = template.metadata.get("model")
        if not isinstance(model, Mapping):
            reason = "required: {provider, name, parameters}"
            raise TemplateFileError(path, "metadata.model", reason)
        chat_model_arguments(model, template_name=template.name)
    except TemplateConversionError as exc:
        # Conversion paths are relative to the blueprint; model paths already say "metadata".
        field = exc.path or ""
        if not field.startswith("metadata"):
            field = f"blueprint.{field}" if field else "blueprint"
        raise TemplateFileError(path, field, exc.reason) from exc


def load_directory(directory: Path) -> list[tuple[Path, TemplateFile]]:
    """Every template file of a folder with its path; InvalidTemplatesError lists all bad ones."""
    templates: list[tuple[Path, TemplateFile]] = []
    errors: list[TemplateFileError] = []
    seen: dict[str, Path] = {}
    for path in template_paths(directory):
        try:
            template = load_template_file(path)
        except TemplateFileError as exc:
            errors.append(exc)
            continue
        if template.name in seen:
            reason = f"{template.name!r} is also the name in {seen[template.name]}"
            errors.append(TemplateFileError(path, "name", reason))
            continue
        seen[template.name] = path
        templates.append((path, template))
    if errors:
        raise InvalidTemplatesError(errors)
    return templates


def _dotted(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
