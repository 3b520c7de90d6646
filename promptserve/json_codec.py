"""JSON on the hot paths: orjson, with the standard library for what orjson refuses.

One log body, one invoke rewrite and one access-log line per request: orjson costs a tenth
of `json` there. What it cannot write (integers beyond 64 bits, lone surrogates) or read
(NaN literals, huge integers) falls back to `json`, so odd values still get through.

Request bodies from outside are read with `loads_body` instead: strict UTF-8, a nesting
limit checked before parsing, no NaN/Infinity or numbers past a double, and a `BodyError`
naming the problem for everything else; `find_chars` says where a string holds NUL or a
lone surrogate (after the cheap `may_hold_bad_chars` test on the raw bytes).
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

import orjson

__all__ = [
    "LONE_SURROGATE",
    "UNSTORABLE",
    "BodyError",
    "body_problem",
    "dumps",
    "find_chars",
    "loads",
    "loads_body",
    "location",
    "may_hold_bad_chars",
]

# What json.dumps(default=str) wrote, except NaN/Infinity (null: JSON has no NaN, and the
# backend refuses it) and enums (their value); datetimes and dataclasses still go
# through str().
_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value`; anything not JSON becomes its str()."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(_finite(value), default=str).encode()


def loads(raw: bytes | str) -> Any:
    """The value of a JSON document (NaN literals and huge integers included)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as None, as orjson writes them (json.dumps would not)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


# -- request bodies from outside --------------------------------------------------------------


class BodyError(ValueError):
    """A request body that is not strict JSON, or nested too deep; the message says why."""


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point left in a str: only a lone one survives JSON decoding."""

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What no database stores in text: NUL (PostgreSQL) and lone surrogates (not UTF-8)."""

# Valid UTF-8 cannot carry NUL inside a JSON string or any surrogate: only escapes can.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# A JSON string (possessive: linear even on a string left open); brackets in it don't nest.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 as int8
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


def loads_body(raw: bytes, *, max_depth: int) -> Any:
    """The value of the JSON document `raw`, read strictly; BodyError if it is not one.

    Refused: bytes that are not UTF-8 (no other encoding is guessed), nesting deeper than
    `max_depth` (checked on the bytes before parsing, so no parser recursion is spent on
    it), NaN and Infinity literals and numbers too large for a double, integers longer than
    Python reads (`sys.get_int_max_str_digits`), and anything json.loads refuses.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(
            f"request body is not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset "
            f"{error.start})"
        ) from None
    if _deeper_than(raw, max_depth):
        raise BodyError(f"request body is nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except BodyError:
        raise
    except json.JSONDecodeError as error:
        raise BodyError(
            f"request body is not valid JSON: {error.msg} (line {error.lineno}, column "
            f"{error.colno})"
        ) from None
    except ValueError:
        # int() past sys.get_int_max_str_digits: the only other ValueError json.loads raises.
        raise BodyError("request body holds an integer with too many digits") from None
    except RecursionError:  # not reached below the depth limit; kept as a last guard
        raise BodyError("request body is nested too deeply") from None


def _deeper_than(raw: bytes, max_depth: int) -> bool:
    # Cheap and certain when there are fewer brackets than levels allowed (most bodies).
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    steps = _STRING.sub(b"", raw).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > max_depth


def _no_constant(name: str) -> None:
    raise BodyError(f"request body is not valid JSON: {name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BodyError(f"request body holds a number out of range ({text[:40]})")
    return value


def may_hold_bad_chars(raw: bytes) -> bool:
    """Whether the JSON `raw` may decode to a string holding NUL or a lone surrogate
    (cheap, on the bytes; False is certain)."""
    return _SUSPECT_ESCAPE.search(raw) is not None


def find_chars(value: Any, pattern: re.Pattern[str]) -> list[str | int] | None:
    """Where in `value` a string (key or value) matches `pattern`: the path of one such
    string (keys as they are, bar the matching characters, shown as U+FFFD); None if none
    does."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if pattern.search(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and pattern.search(key):
                    return [*path, pattern.sub("\ufffd", key)]
                stack.append(([*path, key], child))
        elif isinstance(item, list | tuple):
            stack.extend(([*path, index], child) for index, child in enumerate(item))
    return None


def location(path: list[str | int]) -> str:
    """`path` as a reader would write it: `input.messages[0].content`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def body_problem(raw: bytes, *, max_depth: int, refused: re.Pattern[str],
                 what: str) -> dict[str, Any] | None:
    """Why the JSON body `raw` is refused, as a FastAPI-style validation error
    (`{"type", "loc", "msg"}`), or None: not strict JSON (`loads_body`), or a string holding
    `refused` characters (`what` names them in the message). An empty body is None: the
    route says whether it needs one."""
    if not raw.strip():
        return None
    try:
        value = loads_body(raw, max_depth=max_depth)
    except BodyError as error:
        return {"type": "json_invalid", "loc": ["body"], "msg": str(error)}
    if may_hold_bad_chars(raw):
        where = find_chars(value, refused)
        if where is not None:
            return {"type": "string_unicode", "loc": ["body", *where],
                    "msg": f"must not contain {what}"}
    return None
