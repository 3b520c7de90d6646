"""Request body size limit: 413 before a large body is read into memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptserve import json_codec
from promptserve.server._guards import send_json
from promptserve.server._responses import replaying

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BodySizeLimitMiddleware"]

# LangServe's `token_feedback` route (LangSmith's, never enabled here: it answers 400) is
# parsed by FastAPI, whose validation answer cannot quote NaN, a lone surrogate or deep
# nesting, and fails with a 500 instead. Until add_routes stops mounting it, its bodies are
# read strictly here and refused with a 422 (the other chain routes: TracedEndpoint).
_STRICT_SUFFIXES = ("/token_feedback",)
_STRICT_DEPTH = 32


class BodySizeLimitMiddleware:
    """Answers 413 when a request body exceeds `max_bytes` (declared or streamed).

    A body without a Content-Length (chunked) is read here, up to `max_bytes`, before the
    app runs, and replayed to it: refused mid-way inside the app, the refusal would reach
    whatever reads the body (FastAPI answers "error parsing the body" 400 to any failure
    there, the embedded backend's catch-all a 500), not the client as a 413. Bodies of
    LangServe's `token_feedback` routes are read here too, and refused with a 422 unless they
    are strict JSON (see `_STRICT_SUFFIXES`).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        """Wrap `app`."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse oversize bodies; read chunked ones whole (within the limit) first."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        strict = scope["method"] == "POST" and scope["path"].endswith(_STRICT_SUFFIXES)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                if int(value) > self.max_bytes:
                    await self._refuse(send)
                    return
                # The server reads exactly the declared length (HTTP framing), so a body
                # within it needs no counting; only chunked bodies do.
                if not strict:
                    await self.app(scope, receive, send)
                    return
                break
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body: nobody to answer
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if strict and (problem := _strict_problem(body)) is not None:
            await send_json(send, 422, {"detail": [problem]})
            return
        await self.app(scope, replaying(body, receive), send)

    async def _refuse(self, send: Send) -> None:
        await send_json(
            send, 413, {"message": f"request body is larger than {self.max_bytes} bytes"}
        )


def _strict_problem(body: bytes) -> dict[str, object] | None:
    """A FastAPI-style validation error for a body that is not strict JSON, else None."""
    return json_codec.body_problem(body, max_depth=_STRICT_DEPTH,
                                   refused=json_codec.LONE_SURROGATE,
                                   what="unpaired surrogate characters")
