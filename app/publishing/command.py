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
    """Publish `directory` to the registry at `base_url` (or the configured one) with
    `api_key` (or the configured one); print a summary; return the exit code.

    No key is ever generated here: with neither given, the embedded backend's key is read
    from the data directory where `promptserve serve` keeps it, and a missing one is an error
    that says where it was looked for and what to do.
    """
    out = console or Console()
    err = console or Console(stderr=True)
    if not directory.is_dir():
        _error(err, f"{directory} is not a folder")
        return 2
    target = _target(settings, api_key, base_url)
    if isinstance(target, str):
        _error(err, target)
        return 2
    base_url, api_key, source = target
    err.print(f"publishing to {escape(base_url)} with the API key {escape(source)}",
              soft_wrap=True)
    client = PromptLayer(api_key=api_key, base_url=base_url)
    try:
        report = publish_directory(directory, client=client, progress=True, console=err)
    except InvalidTemplatesError as exc:
        for error in exc.errors:
            err.print(f"[bold red]invalid:[/] {escape(str(error))}", soft_wrap=True)
        err.print("nothing was published")
        return 1
    _print_summary(report, base_url, out)
    return 0 if report.ok else 1


def _target(
    settings: Settings, api_key: str | None, base_url: str | None
) -> tuple[str, str, str] | str:
    """(registry URL, API key, where the key came from), or the error to print."""
    source = "given with --api-key"
    if api_key is None and settings.promptlayer_api_key is not None:
        api_key, source = settings.promptlayer_api_key.get_secret_value(), "in PROMPTLAYER_API_KEY"
    url = base_url or settings.promptlayer_base_url
    if url is not None:
        if api_key is None:
            return (f"no API key for {url}: pass --api-key or set PROMPTLAYER_API_KEY "
                    "(the registry's key, e.g. the one `promptserve backend` printed)")
        return url, api_key, source
    # Neither: the embedded backend of a `promptserve serve` on this machine.
    url = embedded_registry_url(settings)
    if api_key is None:
        path = settings.data_dir / "backend_api_key"
        try:
            api_key = path.read_text().strip() or None
        except OSError:
            api_key = None
        if api_key is None:
            return (f"no API key for {url}: none given (--api-key, PROMPTLAYER_API_KEY) and "
                    f"no embedded backend key in {path}. Start `promptserve serve` with this "
                    "data directory first (it creates the key), pass --url and --api-key for "
                    "another registry, or set PROMPTSERVE_DATA_DIR to the server's data "
                    "directory.")
        source = f"kept in {path}"
    return url, api_key, source


def _error(console: Console, message: str) -> None:
    # soft_wrap: an error is printed whole, never cut to the terminal's width.
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def _print_summary(report: PublishReport, base_url: str, console: Console) -> None:
    if not report.results:
        console.print("no template files found")
        return
    table = Table(title=f"templates → {escape(base_url)}")
    for column in ("file", "template", "result", "version"):
        table.add_column(column)
    for r in report.results:
        style = _STYLES[r.status]
        version = "" if r.version is None else str(r.version)
        status = f"[{style}]{r.status}[/]"
        table.add_row(escape(r.file.name), escape(r.name), status, version)
    console.print(table)
    # Details below the table, whole: a table cell would cut them to the terminal's width.
    for r in report.results:
        if r.detail:
            style = _STYLES[r.status]
            console.print(f"[{style}]{r.status}[/] {escape(r.file.name)}: {escape(r.detail)}",
                          soft_wrap=True)
    console.print(
        f"{len(report.published)} published, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed"
    )
    if any(r.detail.startswith("unreachable") for r in report.failed):
        console.print(f"the registry at {escape(base_url)} did not answer: is it running "
                      "(`promptserve serve` or `promptserve backend`)? --url names another.",
                      soft_wrap=True)
