"""Limits on one chain route: inputs per batch, seconds per stream.

Each wraps the ASGI app of the one route it guards (`add_routes` puts them there), so it
sees a request before LangServe parses it and can end a stream without LangServe's
cooperation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BatchLimit", "StreamDeadline", "send_json"]


async def send_json(send: Send, status: int, body: dict[str, Any],
                     headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer `status` with the JSON `body`."""
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": raw})


class BatchLimit:
    """413 when a batch body carries more than `max_inputs` inputs."""

    def __init__(self, app: ASGIApp, *, max_inputs: int) -> None:
        """Wrap `app`; bodies are already size-capped by BodySizeLimitMiddleware."""
        self.app = app
        self.max_inputs = max_inputs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the inputs of a batch body, then replay it to the app."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        with contextlib.suppress(ValueError, UnicodeDecodeError, RecursionError):
            inputs = json.loads(body).get("inputs") if body.strip().startswith(b"{") else None
            if isinstance(inputs, list) and len(inputs) > self.max_inputs:
                await send_json(send, 413, {"detail": f"a batch may carry at most "
                                             f"{self.max_inputs} inputs (got {len(inputs)})"})
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class StreamDeadline:
    """Ends a stream that runs past `max_seconds` with an SSE error event and `end`."""

    def __init__(self, app: ASGIApp, *, max_seconds: float) -> None:
        """Wrap `app`."""
        self.app = app
        self.max_seconds = max_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the stream under a deadline; on expiry cancel it and close the SSE stream."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "finished": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                state["finished"] = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), self.max_seconds)
        except TimeoutError:
            if state["finished"]:
                return
            error = {"status_code": 504,
                     "message": f"stream exceeded {self.max_seconds:g} s and was stopped"}
            if not state["started"]:
                await send_json(send, 504, {"detail": error["message"]})
                return
            event = f"event: error\r\ndata: {json.dumps(error)}\r\n\r\nevent: end\r\n\r\n"
            await send({"type": "http.response.body", "body": event.encode(),
                        "more_body": False})
