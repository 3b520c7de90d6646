"""Request plumbing shared by the routes: authentication and body validation.

Validation errors answer 400, never FastAPI's 422: the sync SDK treats anything but 400 on
publish as success, and one status for bad input everywhere is easier on clients.
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.backend.errors import BadRequest, Unauthorized

if TYPE_CHECKING:
    from app.backend.store import Store

__all__ = [
    "api_key_of",
    "authenticated_body",
    "check_header_key",
    "check_text",
    "may_hold_unstorable",
    "refuse_unstorable",
    "store_of",
    "utcnow",
    "validate",
]

M = TypeVar("M", bound=BaseModel)


def api_key_of(request: Request) -> str:
    """The key this backend accepts (kept on app.state by the factory)."""
    key: str = request.app.state.backend_api_key
    return key


def _matches(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode()
    )


def check_header_key(request: Request) -> None:
    """Raise 401 unless the X-API-KEY header carries the key."""
    if not _matches(request.headers.get("x-api-key"), api_key_of(request)):
        raise Unauthorized("missing or invalid API key (send the X-API-KEY header)")


async def authenticated_body(request: Request, *, whole: bool = True) -> dict[str, Any]:
    """The JSON object body, after checking the key in X-API-KEY or the body's `api_key`.

    `whole=False` leaves the NUL/surrogate check to the caller, for bodies holding parts
    that are accepted or refused one by one (the log batch).
    """
    expected = api_key_of(request)
    header_ok = _matches(request.headers.get("x-api-key"), expected)
    raw = await request.body()
    try:
        body = _decode(raw)
    except _DECODE_ERRORS as exc:
        if not header_ok:
            raise Unauthorized("missing or invalid API key") from exc
        raise _invalid_json(exc) from exc
    if whole:
        _refuse_unstorable(raw, body)
    if not header_ok and not (isinstance(body, dict) and _matches(body.get("api_key"), expected)):
        raise Unauthorized("missing or invalid API key (X-API-KEY header or body api_key)")
    return _require_object(body)


def parse_object(raw: bytes, *, whole: bool = True) -> dict[str, Any]:
    """`raw` as a JSON object, with the same checks as a request body but no API key;
    for callers inside the process (`whole` as for `authenticated_body`)."""
    try:
        body = _decode(raw)
    except _DECODE_ERRORS as exc:
        raise _invalid_json(exc) from exc
    if whole:
        _refuse_unstorable(raw, body)
    return _require_object(body)


_DECODE_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)


def _decode(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_reject_constant) if raw.strip() else {}


def _invalid_json(exc: Exception) -> BadRequest:
    return BadRequest(f"request body is not valid JSON: {exc}")


def _refuse_unstorable(raw: bytes, body: Any) -> None:
    # Databases cannot store NUL or lone surrogates in text (PostgreSQL refuses NUL; UTF-8
    # cannot encode a lone surrogate): a cheap byte test first, the exact walk only if needed.
    if may_hold_unstorable(raw):
        refuse_unstorable(body)


def may_hold_unstorable(raw: bytes) -> bool:
    """Whether a raw body may hold NUL or a lone surrogate (cheap; False is certain)."""
    return _SUSPECT_ESCAPE.search(raw) is not None


def refuse_unstorable(value: Any) -> None:
    """BadRequest if `value` holds NUL or a lone surrogate anywhere."""
    if _has_bad_char(value):
        raise BadRequest("request body must not contain NUL or unpaired surrogate characters")


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _reject_constant(name: str) -> None:
    # NaN/Infinity are not JSON; PostgreSQL's json type refuses them too.
    raise ValueError(f"{name} is not a valid JSON value")


_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def _has_bad_char(value: Any) -> bool:
    if isinstance(value, str):
        return _BAD_CHAR.search(value) is not None
    if isinstance(value, dict):
        return any(_has_bad_char(k) or _has_bad_char(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_bad_char(v) for v in value)
    return False


def check_text(value: str | None, field: str) -> None:
    """Raise 400 when a path or query value holds a NUL character (PostgreSQL refuses it)."""
    if value is not None and "\x00" in value:
        raise BadRequest(f"{field} must not contain NUL characters")


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def validate(model: type[M], body: dict[str, Any]) -> M:
    """`model` built from `body`, or a 400 naming every offending field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        raise BadRequest("; ".join(problems)) from exc


def utcnow() -> datetime:
    """Now, as the naive UTC the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def store_of(request: Request) -> Store:
    """The store opened by the backend app's lifespan."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise RuntimeError("backend store is not open: enter the backend app's lifespan first")
    return store
