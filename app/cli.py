"""The `promptserve` command line: serve, backend, publish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["main"]

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@cli.command()
def backend(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: PORT).")] = None,
) -> None:
    """Run the embedded PromptLayer-compatible backend alone, its API at the server's root."""
    raise typer.Exit(_not_yet("backend"))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: PORT).")] = None,
) -> None:
    """Serve every chain of the catalog, /feedback and (by default) the embedded backend."""
    raise typer.Exit(_not_yet("serve"))


@cli.command()
def publish(
    directory: Annotated[Path, typer.Argument(help="Folder of template YAML files.")],
) -> None:
    """Publish the template files in DIRECTORY to the configured registry."""
    raise typer.Exit(_not_yet("publish"))


def _not_yet(name: str) -> int:
    typer.echo(f"promptserve {name}: not implemented yet", err=True)
    return 2


def main() -> None:
    """Entry point of the console script."""
    cli()


if __name__ == "__main__":
    main()
