"""`promptserve publish DIR`: publish a folder of template files, print what happened."""

from __future__ import annotations

from pathlib import Path

from promptlayer import PromptLayer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.config import Settings
from app.publishing.files import InvalidTemplatesError
from app.publishing.publisher import PublishReport, publish_directory

__all__ = ["embedded_registry_url", "run_publish_command"]

_STYLES = {"published": "green", "skipped": "dim", "failed": "bold red"}


def embedded_registry_url(settings: Settings) -> str:
    """Where `promptserve serve` mounts the embedded backend, as seen from this machine."""
    # A wildcard bind address is reachable on loopback.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/promptlayer"


def run_publish_command(
    directory: Path,
    settings: Settings,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    console: Console | None = None,
) -> int:
    """Publish `directory` to the configured registry; print a summary; return the exit code."""
    out = console or Console()
    err = console or Console(stderr=True)
    if not directory.is_dir():
        err.print(f"[bold red]error:[/] {escape(str(directory))} is not a folder")
        return 2
    base_url = base_url or settings.promptlayer_base_url
    if api_key is None and settings.promptlayer_api_key is not None:
        api_key = settings.promptlayer_api_key.get_secret_value()
    if base_url is None:
        # Unset PROMPTLAYER_BASE_URL means the embedded backend of a running `promptserve serve`.
        base_url = embedded_registry_url(settings)
        if api_key is None:
            from app.backend import resolve_backend_api_key

            api_key = resolve_backend_api_key(settings)
    if api_key is None:
        err.print("[bold red]error:[/] PROMPTLAYER_API_KEY is required with PROMPTLAYER_BASE_URL")
        return 2
    client = PromptLayer(api_key=api_key, base_url=base_url)
    try:
        report = publish_directory(directory, client=client, progress=True, console=err)
    except InvalidTemplatesError as exc:
        for error in exc.errors:
            err.print(f"[bold red]invalid:[/] {escape(str(error))}")
        err.print("nothing was published")
        return 1
    _print_summary(report, base_url, out)
    return 0 if report.ok else 1


def _print_summary(report: PublishReport, base_url: str, console: Console) -> None:
    if not report.results:
        console.print("no template files found")
        return
    table = Table(title=f"templates → {escape(base_url)}")
    for column in ("file", "template", "result", "version", "detail"):
        table.add_column(column)
    for r in report.results:
        style = _STYLES[r.status]
        version = "" if r.version is None else str(r.version)
        status = f"[{style}]{r.status}[/]"
        table.add_row(escape(r.file.name), escape(r.name), status, version, escape(r.detail))
    console.print(table)
    console.print(
        f"{len(report.published)} published, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed"
    )
