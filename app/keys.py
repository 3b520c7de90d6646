"""API keys, in one place: the key a request presents, and the ring of keys it must match.

Every check of a service or backend key goes through here, so every one compares the same
way: in constant time, against every key of the ring without stopping at a match, on keyed
digests (equal length, so not even a key's length shows in the timing). Nothing here logs a
key, and a ring's repr shows how many keys it holds, never one of them.

Header values are read from the raw ASGI bytes and decoded as UTF-8 (undecodable bytes kept as
surrogate escapes), so a non-ASCII key compares byte for byte with the configured one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["KeyRing", "presented_key"]

_AUTHORIZATION = b"authorization"
_X_API_KEY = b"x-api-key"
_BEARER = "bearer "


def presented_key(
    source: HTTPConnection | Iterable[tuple[bytes, bytes]], *, bearer: bool = True
) -> str | None:
    """The key a request presents: `Authorization: Bearer <key>`, else `X-API-Key: <key>`.

    `source` is a Starlette request (or websocket) or an ASGI scope's `headers`. Header names
    are matched case-insensitively (ASGI servers lower-case them); a Bearer token in any
    Authorization header wins over X-API-Key, and of several X-API-Key headers the first
    counts. With `bearer=False` only X-API-Key is read (the embedded backend's header, as
    PromptLayer's SDK sends it). None when no key (or an empty one) is presented.
    """
    headers = source.scope["headers"] if isinstance(source, HTTPConnection) else source
    found: str | None = None
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == _AUTHORIZATION and bearer:
            text = _text(raw_value)
            if text[: len(_BEARER)].lower() == _BEARER:
                return text[len(_BEARER) :].strip() or None
        elif name == _X_API_KEY and found is None:
            found = _text(raw_value)
    return found or None


class KeyRing:
    """A set of API keys that answers one question: does this key belong to it?"""

    __slots__ = ("_digests", "_salt")

    def __init__(self, keys: Iterable[str | SecretStr]) -> None:
        """Hold `keys` (plain or `SecretStr`); empty keys are left out: they open nothing."""
        # A random key per ring: the digests kept here say nothing outside this process.
        self._salt = secrets.token_bytes(32)
        self._digests = tuple(
            self._digest(text) for text in (_plain(key) for key in keys) if text
        )

    def _digest(self, text: str) -> bytes:
        return hmac.new(self._salt, _wire(text), hashlib.sha256).digest()

    def allows(self, key: object) -> bool:
        """Whether `key` is one of the ring's keys; False for None, "" or a non-string.

        Constant time: the key is compared with every key of the ring, no early exit.
        """
        if not isinstance(key, str) or not key:
            return False
        candidate = self._digest(key)
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(candidate, known)
        return found

    def __len__(self) -> int:
        """How many keys the ring holds."""
        return len(self._digests)

    def __repr__(self) -> str:
        """The number of keys only, never a key."""
        return f"KeyRing(<{len(self._digests)} keys>)"


def _plain(key: str | SecretStr) -> str:
    return key if isinstance(key, str) else key.get_secret_value()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _wire(text: str) -> bytes:
    """`text` as the bytes it came from (surrogate escapes back to their bytes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no header decoding made: never a real key
        return text.encode("utf-8", "surrogatepass")
