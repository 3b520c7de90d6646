"""The embedded backend as seen from the service: mounted for the world, and reachable
from inside over a loopback listener of its own.

Chains fetch templates and logs are delivered over HTTP in both modes, so the embedded
backend is exercised by exactly the code that talks to the hosted PromptLayer. The
service cannot call its own port during start-up (uvicorn binds it only after the
lifespan has started), hence a private listener on 127.0.0.1 that starts first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

__all__ = ["internal_listener"]


@contextlib.asynccontextmanager
async def internal_listener(app: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 at an ephemeral port in this event loop; yield its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False,
        http="h11",  # as `promptserve serve` (app/cli.py), though httptools is installed
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await server.shutdown()
