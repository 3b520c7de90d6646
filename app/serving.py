"""`promptserve serve`: the bundled model, worker processes, metrics folder, and a welcome.

With `--workers N` uvicorn starts N fresh processes that each build the app from
`Settings()`; whatever this parent decides for them (the local model's URL, the metrics
folder) goes through the environment. The local model server runs once, here, shared by
every worker, and stops when serve stops.

The welcome (the served chains and how to call them) is printed once the server answers
`/healthz`, so a start-up that fails never shows it; a start-up failure we can explain (a
prompt the registry lacks, a catalog that cannot be served) is reported as its message
alone, with the traceback at debug level (`QuietStartupFailure`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from app.config import Settings, export_to_environment

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["QuietStartupFailure", "serve_forever", "welcome", "worker_app"]

logger = logging.getLogger(__name__)

Runner = Callable[..., None]


def serve_forever(settings: Settings, *, run: Runner) -> None:
    """Start the local model if needed, then uvicorn (one process or `settings.workers`)."""
    from app.local_model import MODEL_ALIAS, LocalModelError, local_model_server
    from app.observability import reset_multiprocess_dir

    updates: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if settings.uses_local_model:
            print("promptserve: starting the bundled local model ...", file=sys.stderr, flush=True)
            try:
                server = stack.enter_context(local_model_server(settings))
            except LocalModelError as error:
                print(f"promptserve: cannot start the local model: {error}", file=sys.stderr)
                raise SystemExit(1) from None
            updates = {"openai_base_url": server.base_url, "model_name": MODEL_ALIAS}
        paths = _chain_paths(settings)
        if settings.workers > 1:
            metrics_dir = (settings.metrics_dir or settings.data_dir / "metrics").resolve()
            reset_multiprocess_dir(metrics_dir)
            updates["metrics_dir"] = metrics_dir
            export_to_environment(updates)
            _welcome_when_up(settings, paths)
            run("app.serving:worker_app", settings, factory=True, workers=settings.workers)
        else:
            from app.service import create_app

            app = create_app(settings.model_copy(update=updates))
            _welcome_when_up(settings, paths)
            run(QuietStartupFailure(app), settings)


def _chain_paths(settings: Settings) -> list[str]:
    """The served chains' paths; a catalog that cannot be served stops here, message alone."""
    from app.service import CatalogError, discover_chains

    try:
        chains = discover_chains(settings.chains_package, templates_dir=settings.templates_dir)
    except CatalogError as error:
        print(f"promptserve: cannot serve the chains: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    return [chain.path for chain in chains]


def _welcome_when_up(settings: Settings, paths: Sequence[str]) -> None:
    """Print the welcome from a daemon thread once /healthz answers (it never does when the
    start-up fails: the process exits first)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}/healthz"

    def wait_then_print() -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    print(welcome(settings, paths), file=sys.stderr, flush=True)
                    return
            time.sleep(0.2)

    threading.Thread(target=wait_then_print, name="promptserve-welcome", daemon=True).start()


class QuietStartupFailure:
    """An ASGI wrapper that reports a start-up failure we can explain by its message alone.

    Starlette sends uvicorn the whole traceback as the failure's message; for the errors
    whose message already says what is wrong and what to do (a prompt the registry does not
    have, a catalog that cannot be served) the message is enough, and the traceback goes to
    the debug log.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app` (everything but the lifespan's failure passes through untouched)."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run `app`; hold back a start-up failure until its cause is known."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def holding_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, holding_send)
        except _explained() as error:
            logger.debug("start-up failed", exc_info=error)
            await send({"type": "lifespan.startup.failed", "message": f"promptserve: {error}"})
            return
        except BaseException:
            for message in held:
                await send(message)
            raise
        for message in held:
            await send(message)


def _explained() -> tuple[type[BaseException], ...]:
    from app.service import CatalogError
    from promptserve.prompts._store import PromptStartupError

    return (PromptStartupError, CatalogError)


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the service, settings from the environment,
    its start-up heap frozen as `_run` does for a single process (app.heap_freeze)."""
    from app.heap_freeze import FreezeHeapAfterStartup
    from app.service import create_app

    return FreezeHeapAfterStartup(QuietStartupFailure(create_app()))


def welcome(settings: Settings, paths: Sequence[str]) -> str:
    """Where to go once the server is up: the chains served, the dashboard, curl lines."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    feedback = (
        '{"request_id": <promptlayer_request_id>, "score": 90, '
        '"feedback_token": "<feedback_token>"}'
    )
    lines = [
        f"promptserve: serving on {base} ({settings.workers} worker(s))",
        f"  chains:     {'  '.join(paths)}  (each: /invoke /batch /stream /stream_log "
        "/stream_events /playground/)",
    ]
    if "/example" in paths:
        data = "-H 'Content-Type: application/json' -d '{\"input\": {\"product\": \"toasters\"}}'"
        lines += [f"  invoke:     curl -s {base}/example/invoke {data}",
                  f"  stream:     curl -sN {base}/example/stream {data}"]
    lines += [
        f"  dashboard:  {base}/dashboard/",
        f"  feedback:   curl -s {base}/feedback -H 'Content-Type: application/json' "
        f"-d '{feedback}'",
        "  (request id and feedback token: the invoke answer's metadata, or the stream's "
        "metadata event)",
        f"  health:     {base}/healthz  {base}/readyz  {base}/metrics",
    ]
    return "\n".join(lines)
