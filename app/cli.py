"""The `promptserve` command line: serve, backend, publish, release."""

from __future__ import annotations

import logging.config
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from app.config import Settings
from app.releases.cli import release_cli

__all__ = ["main"]

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

HostOption = Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")]
PortOption = Annotated[int | None, typer.Option(help="Port to bind (default: PORT).")]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="Worker processes (default: PROMPTSERVE_WORKERS, 1).", min=1, max=64),
]


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value stops here with the setting's name."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        for problem in error.errors():
            name = ".".join(str(part) for part in problem["loc"]).upper()
            typer.echo(f"promptserve: setting {name}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


def _run(app: Any, settings: Settings, **options: Any) -> None:
    import uvicorn

    from app.heap_freeze import FreezeHeapAfterStartup
    from app.observability import log_config

    config = log_config(level=settings.log_level, fmt=settings.log_format)
    logging.config.dictConfig(config)
    # access_log off: the app's middleware writes one structured line per request.
    # Slow clients cost a socket and a coroutine, never a thread; keep-alive idlers are cut
    # after 5 s, and a shutdown waits at most 20 s for open requests so the lifespan can still
    # flush and spool delivery before an orchestrator's SIGKILL (see README, "Reliability").
    # Freeze the start-up heap once started (app.heap_freeze); a factory's import string
    # names a factory that wraps its app itself (app.serving.worker_app).
    uvicorn.run(
        app if isinstance(app, str) else FreezeHeapAfterStartup(app),
        host=settings.host,
        port=settings.port,
        log_config=config,
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=20,
        # h11, explicitly: httptools is installed now (log delivery parses answers with it)
        # and uvicorn would pick it on its own; BENCHMARKS.md's trial kept h11 here.
        http="h11",
        **options,
    )


@cli.command()
def backend(host: HostOption = None, port: PortOption = None) -> None:
    """Run the embedded PromptLayer-compatible backend alone, its API at the server's root."""
    from app.backend import create_backend_app, resolve_backend_api_key

    settings = _settings(host=host, port=port)
    _run(create_backend_app(settings, api_key=resolve_backend_api_key(settings)), settings)


@cli.command()
def serve(host: HostOption = None, port: PortOption = None, workers: WorkersOption = None) -> None:
    """Serve every chain of the catalog, /feedback and (by default) the embedded backend."""
    from app.serving import serve_forever

    serve_forever(_settings(host=host, port=port, workers=workers), run=_run)


@cli.command()
def publish(
    directory: Annotated[Path, typer.Argument(help="Folder of template YAML files.")],
    url: Annotated[str | None, typer.Option(
        help="The registry (default: PROMPTLAYER_BASE_URL, else the embedded backend of "
        "`promptserve serve` at HOST:PORT).")] = None,
    api_key: Annotated[str | None, typer.Option(
        help="Its API key (default: PROMPTLAYER_API_KEY, else the embedded backend's key in "
        "the data directory).")] = None,
) -> None:
    """Publish the template files in DIRECTORY to a registry."""
    from app.publishing import run_publish_command

    settings = _settings()
    raise typer.Exit(run_publish_command(directory, settings, api_key=api_key, base_url=url))


cli.add_typer(release_cli, name="release")


def main() -> None:
    """Entry point of the console script."""
    cli()


if __name__ == "__main__":
    main()
