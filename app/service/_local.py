"""The bundled local model for an app whose settings name no model server."""

from __future__ import annotations

import asyncio
import contextlib

from app.config import Settings

__all__ = ["local_model_if_needed"]


async def local_model_if_needed(settings: Settings, stack: contextlib.AsyncExitStack) -> Settings:
    """`settings` pointing at a local model server started here (and stopped with `stack`).

    `promptserve serve` starts the server in its own process before the workers, and
    passes OPENAI_BASE_URL on; this path is for an app built directly (tests, uvicorn).
    """
    if not settings.uses_local_model:
        return settings
    from app.local_model import MODEL_ALIAS, start_local_model

    # Waiting for the server blocks: off the event loop. The thread is short-lived, so the
    # child is not tied to it; the exit stack stops it.
    server = await asyncio.to_thread(start_local_model, settings, die_with_parent=False)
    stack.push_async_callback(asyncio.to_thread, server.stop)
    return settings.model_copy(
        update={"openai_base_url": server.base_url, "model_name": MODEL_ALIAS}
    )
