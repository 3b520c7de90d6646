"""Log bodies every store can take: NUL and lone surrogates replaced with U+FFFD.

A model takes a prompt holding NUL (and a model server may answer a lone surrogate), but
PostgreSQL stores no NUL in text and UTF-8 cannot encode a lone surrogate, so PromptLayer
(the embedded backend too) refuses such a log with a 400, after the user got the answer:
a 200 without its log. `sanitised` replaces each such character, in keys and values, with
U+FFFD and notes it in the log's metadata (`promptserve_sanitised: "true"`). The model's
own input is left as it was; only the log is changed.

One log per LLM call passes here, so the common case is kept cheap: the body is encoded with
orjson (what delivery does anyway) and searched for an escaped NUL; only a body that holds
one, or that orjson refuses (a lone surrogate, among other things), is walked.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from promptserve.tracing._types import LogBody

__all__ = ["SANITISED_KEY", "sanitised"]

SANITISED_KEY = "promptserve_sanitised"
"""The metadata key that marks a log whose strings were sanitised (value "true")."""

_BAD = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
# As promptserve.json_codec.dumps encodes (the delivery's encoder), so the test sees what
# delivery will write.
_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_SCALARS = (int, float, bool, type(None))


def sanitised(body: LogBody) -> LogBody:
    """`body` itself when no string in it holds NUL or a lone surrogate; else a copy with
    each of them replaced by U+FFFD and `metadata[SANITISED_KEY] = "true"`."""
    try:
        encoded = orjson.dumps(body, default=str, option=_OPTIONS)
    except orjson.JSONEncodeError:
        pass  # a lone surrogate, an integer past 64 bits, very deep nesting: look closer
    else:
        if b"\\u0000" not in encoded:
            return body
    try:
        cleaned = _clean(body)
    except RecursionError:
        return body  # too deep to walk; delivery reports the refusal if there is one
    if cleaned is body or not isinstance(cleaned, dict):
        return body
    metadata = cleaned.get("metadata")
    cleaned["metadata"] = {**(metadata if isinstance(metadata, dict) else {}),
                           SANITISED_KEY: "true"}
    return cleaned


def _clean(value: Any) -> Any:
    """`value` with bad characters replaced; the very same object when it had none."""
    if isinstance(value, str):
        return _BAD.sub(_REPLACEMENT, value) if _BAD.search(value) else value
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        changed = False
        items = []
        for key, item in value.items():
            new_key, new_item = _clean(key), _clean(item)
            changed = changed or new_key is not key or new_item is not item
            items.append((new_key, new_item))
        return dict(items) if changed else value
    if isinstance(value, list | tuple):
        new = [_clean(item) for item in value]
        if all(a is b for a, b in zip(new, value, strict=True)):
            return value
        return new
    # What the encoder writes as str() (default=str): cleaned as that text, if need be.
    text = str(value)
    return _BAD.sub(_REPLACEMENT, text) if _BAD.search(text) else value
