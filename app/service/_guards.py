"""The service's API keys in front of the chain routes: a plain ASGI middleware, so it
refuses a request before LangServe parses it."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

from promptserve.server._guards import send_json

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ApiKeyMiddleware", "presented_key"]


def presented_key(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The key in `Authorization: Bearer …` or else `X-API-Key`, if any."""
    found: str | None = None
    for name, value in headers:
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
        elif name == b"x-api-key":
            found = value.decode("latin-1")
    return found


class ApiKeyMiddleware:
    """401 on paths under `prefixes` unless a service API key is presented."""

    def __init__(self, app: ASGIApp, *, keys: Sequence[str], prefixes: Sequence[str]) -> None:
        """Guard every path that starts with one of `prefixes` (e.g. `/example/`)."""
        self.app = app
        self._keys = [key.encode() for key in keys]
        self._prefixes = tuple(prefix.rstrip("/") + "/" for prefix in prefixes)

    def _allowed(self, key: str | None) -> bool:
        if not key:
            return False
        candidate = key.encode("utf-8", "surrogateescape")
        # Compare with every key (no early exit), each in constant time.
        matches = [hmac.compare_digest(candidate, known) for known in self._keys]
        return any(matches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse requests without a valid key; the key itself is never echoed or logged."""
        if scope["type"] == "http" and scope["path"].startswith(self._prefixes) and \
                not self._allowed(presented_key(scope["headers"])):
            await send_json(send, 401, {"detail": "a valid API key is required "
                                         "(Authorization: Bearer or X-API-Key)"},
                             [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)
