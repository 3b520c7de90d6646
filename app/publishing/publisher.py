"""Publish a folder of template files to a PromptLayer registry, skipping unchanged ones.

A file is compared with the registry's latest version of its template: blueprint and
metadata, after normalising what a registry may fill in or spell differently (computed
`input_variables`, the default `template_format`, null or empty optional fields). Commit
message, tags and labels do not count: equal content is "skipped", even if a label sits
elsewhere. Every file is validated before the first request, so an invalid folder publishes
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from promptlayer.exceptions import (
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
    PromptLayerError,
    PromptLayerNotFoundError,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from app.publishing.files import TemplateFile, load_directory

if TYPE_CHECKING:
    from promptlayer import PromptLayer

__all__ = ["FileResult", "PublishReport", "is_unchanged", "publish_directory", "seed_registry"]

logger = logging.getLogger(__name__)

Status = Literal["published", "skipped", "failed"]


@dataclass(frozen=True)
class FileResult:
    """What happened to one file."""

    file: Path
    name: str
    status: Status
    version: int | None
    detail: str


@dataclass(frozen=True)
class PublishReport:
    """Per-file results of one publish run."""

    results: tuple[FileResult, ...]

    def _with(self, status: Status) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.status == status)

    @property
    def published(self) -> tuple[FileResult, ...]:
        """Files that became a new version."""
        return self._with("published")

    @property
    def skipped(self) -> tuple[FileResult, ...]:
        """Files whose content the registry already has."""
        return self._with("skipped")

    @property
    def failed(self) -> tuple[FileResult, ...]:
        """Files the registry refused or could not be asked about."""
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed


def publish_directory(
    directory: Path,
    *,
    client: PromptLayer,
    progress: bool = False,
    only_missing: bool = False,
    console: Console | None = None,
) -> PublishReport:
    """Publish every changed (or, with `only_missing`, every new) template file of a folder."""
    templates = load_directory(directory)  # raises before any request if a file is invalid
    results: list[FileResult] = []
    unreachable: str | None = None
    with _progress(progress, len(templates), console) as advance:
        for path, template in templates:
            if unreachable is not None:
                result = FileResult(path, template.name, "failed", None, unreachable)
            else:
                result = _publish_one(path, template, client, only_missing=only_missing)
                if result.status == "failed" and result.detail.startswith("unreachable"):
                    # Each SDK call retries for seconds; do not repeat that for every file.
                    unreachable = "not attempted: the registry is unreachable"
            results.append(result)
            advance(template.name)
    return PublishReport(tuple(results))


def seed_registry(directory: Path, client: PromptLayer) -> PublishReport:
    """Publish the templates a registry does not have yet (server start-up, empty registry)."""
    report = publish_directory(directory, client=client, only_missing=True)
    for r in report.published:
        logger.info("seeded template %r (version %s) from %s", r.name, r.version, r.file)
    for r in report.failed:
        logger.warning("could not seed template %r from %s: %s", r.name, r.file, r.detail)
    return report


def _publish_one(
    path: Path, template: TemplateFile, client: PromptLayer, *, only_missing: bool
) -> FileResult:
    def result(status: Status, version: Any, detail: str) -> FileResult:
        number = version if isinstance(version, int) else None
        return FileResult(path, template.name, status, number, detail)

    try:
        current = client.templates.get(template.name, {"skip_input_variable_rendering": True})
    except PromptLayerNotFoundError:
        current = None
    except (PromptLayerAPIConnectionError, PromptLayerAPITimeoutError) as exc:
        return result("failed", None, f"unreachable: {exc}")
    except PromptLayerError as exc:
        return result("failed", None, f"could not read the current version: {exc}")
    if current is not None:
        version = current.get("version")
        if only_missing:
            return result("skipped", version, "already in the registry")
        if is_unchanged(current, template):
            return result("skipped", version, "unchanged")
    try:
        published = client.templates.publish(template.publish_body())
    except (PromptLayerAPIConnectionError, PromptLayerAPITimeoutError) as exc:
        return result("failed", None, f"unreachable: {exc}")
    except PromptLayerError as exc:
        return result("failed", None, f"refused: {exc}")
    # The sync SDK returns the body of a 401 or 500 as if it were a success: check it.
    if not isinstance(published, Mapping) or not isinstance(published.get("version_number"), int):
        message = published.get("message") if isinstance(published, Mapping) else None
        return result("failed", None, f"refused: {message or published!r}")
    detail = "new template" if current is None else "changed"
    return result("published", published["version_number"], detail)


def is_unchanged(current: Mapping[str, Any], template: TemplateFile) -> bool:
    """True if a registry GET response has the same blueprint and metadata as a file."""
    same_blueprint = _normalised_blueprint(current.get("prompt_template")) == (
        _normalised_blueprint(template.blueprint)
    )
    return bool(same_blueprint and _pruned(current.get("metadata")) == _pruned(template.metadata))


def _normalised_blueprint(blueprint: Any) -> Any:
    if not isinstance(blueprint, Mapping):
        return blueprint
    result = dict(blueprint)
    # Registries compute input_variables (each its own way); the content decides them.
    result.pop("input_variables", None)
    if result.get("type") == "completion":
        result.setdefault("template_format", "f-string")
    messages = result.get("messages")
    if isinstance(messages, list):
        result["messages"] = [_normalised_message(m) for m in messages]
    return _pruned(result)


def _normalised_message(message: Any) -> Any:
    if not isinstance(message, Mapping):
        return message
    result = dict(message)
    result.pop("input_variables", None)
    if result.get("role") != "placeholder" and result.get("template_format") is None:
        result["template_format"] = "f-string"
    return result


def _pruned(value: Any) -> Any:
    """`value` without null or empty optional fields, at any depth."""
    if isinstance(value, Mapping):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


@contextmanager
def _progress(enabled: bool, total: int, console: Console | None) -> Iterator[Any]:
    if not enabled:
        yield lambda name: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task("publishing", total=total)

        def advance(name: str) -> None:
            bar.update(task, advance=1, description=name)

        yield advance
