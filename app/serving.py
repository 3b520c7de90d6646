"""`promptserve serve`: the bundled model, worker processes, metrics folder, and a welcome.

With `--workers N` uvicorn starts N fresh processes that each build the app from
`Settings()`; whatever this parent decides for them (the local model's URL, the metrics
folder) goes through the environment. The local model server runs once, here, shared by
every worker, and stops when serve stops.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from app.config import Settings, export_to_environment

__all__ = ["serve_forever", "welcome", "worker_app"]

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
        if settings.workers > 1:
            metrics_dir = (settings.metrics_dir or settings.data_dir / "metrics").resolve()
            reset_multiprocess_dir(metrics_dir)
            updates["metrics_dir"] = metrics_dir
            export_to_environment(updates)
            print(welcome(settings), file=sys.stderr, flush=True)
            run("app.serving:worker_app", settings, factory=True, workers=settings.workers)
        else:
            from app.service import create_app

            app = create_app(settings.model_copy(update=updates))
            print(welcome(settings), file=sys.stderr, flush=True)
            run(app, settings)


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the service, settings from the environment,
    its start-up heap frozen as `_run` does for a single process (app.heap_freeze)."""
    from app.heap_freeze import FreezeHeapAfterStartup
    from app.service import create_app

    return FreezeHeapAfterStartup(create_app())


def welcome(settings: Settings) -> str:
    """Where to go once the server is up: playground, dashboard, and curl lines."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    data = "-H 'Content-Type: application/json' -d '{\"input\": {\"product\": \"toasters\"}}'"
    feedback = (
        '{"request_id": <promptlayer_request_id>, "score": 90, '
        '"feedback_token": "<feedback_token>"}'
    )
    return "\n".join(
        [
            f"promptserve: serving on {base} ({settings.workers} worker(s))",
            f"  playground: {base}/example/playground/",
            f"  dashboard:  {base}/dashboard/",
            f"  invoke:     curl -s {base}/example/invoke {data}",
            f"  stream:     curl -sN {base}/example/stream {data}",
            f"  feedback:   curl -s {base}/feedback -H 'Content-Type: application/json' "
            f"-d '{feedback}'",
            "  (request id and feedback token: the invoke answer's metadata, or the stream's "
            "metadata event)",
            f"  health:     {base}/healthz  {base}/readyz  {base}/metrics",
        ]
    )
