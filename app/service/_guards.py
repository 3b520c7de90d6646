"""The service's API keys in front of the chain routes: a plain ASGI middleware, so it
refuses a request before LangServe parses it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.keys import presented_key
from promptserve.server._guards import send_json

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from app.keys import KeyRing

__all__ = ["ApiKeyMiddleware"]


class ApiKeyMiddleware:
    """401 on paths under `prefixes` unless a key of the ring is presented."""

    def __init__(self, app: ASGIApp, *, keys: KeyRing, prefixes: Sequence[str]) -> None:
        """Guard every path that starts with one of `prefixes` (e.g. `/example/`)."""
        self.app = app
        self._keys = keys
        self._prefixes = tuple(prefix.rstrip("/") + "/" for prefix in prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse requests without a valid key; the key itself is never echoed or logged."""
        if scope["type"] == "http" and scope["path"].startswith(self._prefixes) and \
                not self._keys.allows(presented_key(scope["headers"])):
            await send_json(send, 401, {"detail": "a valid API key is required "
                                         "(Authorization: Bearer or X-API-Key)"},
                             [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)
