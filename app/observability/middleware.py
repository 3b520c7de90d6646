"""One ASGI middleware for every HTTP request: request id, metrics and an access log line."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from app.observability.logging import log_access_line, request_id_var
from app.observability.metrics import observe_request

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ObservabilityMiddleware"]

_REQUEST_ID_HEADER = b"x-request-id"
_PL_REQUEST_ID_HEADER = b"x-promptlayer-request-id"


class ObservabilityMiddleware:
    """Tags each request with an id (X-Request-Id, kept if the caller sent a sane one)."""

    def __init__(self, app: ASGIApp, *, trace_scope_key: str | None = None) -> None:
        """Wrap `app`; `trace_scope_key` is where the chain tracer leaves its run ids."""
        self.app = app
        self.trace_scope_key = trace_scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then count it and log it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Same 32 hex digits as uuid4().hex, without building a UUID (2.8 → 0.6 µs).
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        outcome: dict[str, Any] = {"status": 500, "pl_request_id": None}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name.lower() == _PL_REQUEST_ID_HEADER:
                        outcome["pl_request_id"] = value.decode("latin-1")
                headers.append((_REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope, root_path)
            observe_request(route, scope["method"], outcome["status"], elapsed)
            log_access_line(
                f"{scope['method']} {scope['path']} {outcome['status']}",
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": outcome["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                    "run_id": self._run_id(scope),
                    "promptlayer_request_id": outcome["pl_request_id"],
                },
            )
            request_id_var.reset(token)

    def _run_id(self, scope: Scope) -> str | None:
        trace = scope.get(self.trace_scope_key) if self.trace_scope_key else None
        runs = getattr(trace, "runs", None)  # a promptserve.server.RequestTrace
        return str(next(iter(runs))) if runs else None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == _REQUEST_ID_HEADER:
            text: str = value.decode("latin-1")
            # Only short, printable ids go into our logs and headers.
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return None


def _route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template (bounded label values), mounts included."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    mount_prefix = str(scope.get("root_path", ""))[len(root_path) :]
    return mount_prefix + path
