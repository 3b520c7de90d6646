"""Request plumbing shared by the routes: authentication and body validation.

Validation errors answer 400, never FastAPI's 422: the sync SDK treats anything but 400 on
publish as success, and one status for bad input everywhere is easier on clients.

Bodies are read strictly (`promptserve.json_codec.loads_body`): UTF-8 only, at most
`MAX_DEPTH` levels deep (checked before parsing; deeper ones failed the store's serializer
with a 500), no NaN/Infinity or numbers past a double. NUL and lone surrogates are refused
in any string, keys included, since no database stores them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.backend.errors import BadRequest, Unauthorized
from app.keys import KeyRing, presented_key
from promptserve import json_codec

if TYPE_CHECKING:
    from app.backend.store import Store

__all__ = [
    "MAX_DEPTH",
    "api_key_of",
    "authenticated_body",
    "check_header_key",
    "check_text",
    "key_ring_of",
    "may_hold_unstorable",
    "refuse_unstorable",
    "store_of",
    "utcnow",
    "validate",
]

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 200
"""How deeply a body may nest: the service's chain inputs stop at 100 levels
(promptserve.server._responses), and a log or a batch of them wraps one in a few more; the
store writes JSON with orjson, which stops at 255."""


def api_key_of(request: Request) -> str:
    """The key this backend accepts (kept on app.state by the factory)."""
    key: str = request.app.state.backend_api_key
    return key


def key_ring_of(request: Request) -> KeyRing:
    """The ring holding the backend's key (app.keys compares every key the same way)."""
    ring: KeyRing = request.app.state.backend_key_ring
    return ring


def check_header_key(request: Request) -> None:
    """Raise 401 unless the X-API-KEY header carries the key."""
    if not key_ring_of(request).allows(presented_key(request, bearer=False)):
        raise Unauthorized("missing or invalid API key (send the X-API-KEY header)")


async def authenticated_body(request: Request, *, whole: bool = True) -> dict[str, Any]:
    """The JSON object body, after checking the key in X-API-KEY or the body's `api_key`.

    `whole=False` leaves the NUL/surrogate check of each `requests[i].body` to the caller,
    for the log batch, whose logs are accepted or refused one by one; the rest of the body
    (the envelope, the idempotency keys) is checked here.
    """
    ring = key_ring_of(request)
    header_ok = ring.allows(presented_key(request, bearer=False))
    raw = await request.body()
    try:
        body = _decode(raw)
    except _DECODE_ERRORS as exc:
        if not header_ok:
            raise Unauthorized("missing or invalid API key") from exc
        raise _invalid_json(exc) from exc
    _refuse_unstorable(raw, body, whole=whole)
    if not header_ok and not (isinstance(body, dict) and ring.allows(body.get("api_key"))):
        raise Unauthorized("missing or invalid API key (X-API-KEY header or body api_key)")
    return _require_object(body)


def parse_object(raw: bytes, *, whole: bool = True) -> dict[str, Any]:
    """`raw` as a JSON object, with the same checks as a request body but no API key;
    for callers inside the process (`whole` as for `authenticated_body`)."""
    try:
        body = _decode(raw)
    except _DECODE_ERRORS as exc:
        raise _invalid_json(exc) from exc
    _refuse_unstorable(raw, body, whole=whole)
    return _require_object(body)


_DECODE_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)


def _decode(raw: bytes) -> Any:
    return json_codec.loads_body(raw, max_depth=MAX_DEPTH) if raw.strip() else {}


def _invalid_json(exc: Exception) -> BadRequest:
    if isinstance(exc, json_codec.BodyError):
        return BadRequest(str(exc))
    return BadRequest(f"request body is not valid JSON: {exc}")


def _refuse_unstorable(raw: bytes, body: Any, *, whole: bool) -> None:
    # Databases cannot store NUL or lone surrogates in text (PostgreSQL refuses NUL; UTF-8
    # cannot encode a lone surrogate): a cheap byte test first, the exact walk only if needed.
    if not may_hold_unstorable(raw):
        return
    if whole or not isinstance(body, dict):
        refuse_unstorable(body)
        return
    # The log batch: everything but each entry's body, which is judged with its entry.
    entries = body.get("requests")
    refuse_unstorable({k: v for k, v in body.items() if k != "requests"})
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            parts = ({k: v for k, v in entry.items() if k != "body"}
                     if isinstance(entry, dict) else entry)
            refuse_unstorable(parts, where=["requests", index])
    else:
        refuse_unstorable(entries, where=["requests"])


def may_hold_unstorable(raw: bytes) -> bool:
    """Whether a raw body may hold NUL or a lone surrogate (cheap; False is certain)."""
    return json_codec.may_hold_bad_chars(raw)


def refuse_unstorable(value: Any, *, where: list[str | int] | None = None) -> None:
    """BadRequest if `value` (found at `where` in the body) holds NUL or a lone surrogate
    in any string or key; the message says where."""
    found = json_codec.find_chars(value, json_codec.UNSTORABLE)
    if found is not None:
        place = json_codec.location([*(where or []), *found])
        raise BadRequest("request body must not contain NUL or unpaired surrogate characters "
                         f"(found in {place})")


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def check_text(value: str | None, field: str) -> None:
    """Raise 400 when a path or query value holds a NUL character (PostgreSQL refuses it)."""
    if value is not None and "\x00" in value:
        raise BadRequest(f"{field} must not contain NUL characters")


def validate(model: type[M], body: dict[str, Any]) -> M:
    """`model` built from `body`, or a 400 naming every offending field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [f"{json_codec.location(list(e['loc']))}: {e['msg']}"
                    for e in exc.errors()[:5]]
        # Keys of the body name the fields: never a lone surrogate in an answer.
        message = json_codec.LONE_SURROGATE.sub("\ufffd", "; ".join(problems))
        raise BadRequest(message) from exc


def utcnow() -> datetime:
    """Now, as the naive UTC the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def store_of(request: Request) -> Store:
    """The store opened by the backend app's lifespan."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise RuntimeError("backend store is not open: enter the backend app's lifespan first")
    return store
