"""JSON on the hot paths: orjson, with the standard library for what orjson refuses.

One log body, one invoke rewrite and one access-log line per request: orjson costs a tenth
of `json` there. What it cannot write (integers beyond 64 bits, lone surrogates) or read
(NaN literals, huge integers) falls back to `json`, so odd values still get through.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

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
