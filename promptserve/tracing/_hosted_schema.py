"""The hosted PromptLayer's `LogRequest` schema, and fitting a log body to it.

`promptlayer_log_request.schema.json` (next to this module) is `components.schemas.LogRequest`
of the hosted PromptLayer's published OpenAPI (2026-08) with every component it references,
copied unchanged except that `#/components/schemas/X` reads `#/$defs/X`. OpenAPI 3.1 schemas
are JSON Schema 2020-12; `discriminator` is an OpenAPI keyword validators ignore, and `fit`
reads it to find which branch of a `oneOf` a block or message meant.

Who uses it:
- the tracer (`_blueprints`) builds bodies that fit by construction, and checks only the
  parts it passes through from outside (content blocks it did not build, tools) with `fits`;
- the embedded backend (`app.backend.api.requests`) runs `fit` on every log it receives, so
  it accepts what the hosted service accepts and no more: a part that does not fit (a content
  block, a tool, a tag, a metadata value, an optional field) is removed and named in
  `Fitted.removed`, and the rest is stored; `Unfit` only when a field the log cannot do
  without (provider, model, the times) does not fit. An input or output blueprint that does
  not fit even without its bad parts is stored empty, so the log's other fields survive.
- the test suite validates every body it produces against the same file with `jsonschema`
  (an independent implementation), and fails a test whose traced logs the backend had to cut.

One leniency: `request_start_time`/`request_end_time` may be epoch seconds. The schema says
date-time text, but the hosted service takes the numbers its own SDK sends (SDK 1.5.16
`log_request` sends floats), so numbers are checked as the time they denote.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs

__all__ = [
    "CONTENT_BLOCK",
    "SCHEMA_PATH",
    "TOOL",
    "TOOL_CHOICE",
    "Fitted",
    "Unfit",
    "content_types",
    "fit",
    "fits",
    "log_request_schema",
    "problems",
]

SCHEMA_PATH = Path(__file__).with_name("promptlayer_log_request.schema.json")
"""The copied schema (JSON Schema 2020-12)."""

# JSON pointers (into the schema file) of the parts the tracer checks on their own.
CONTENT_BLOCK = "#/$defs/UserMessage/properties/content/items"
TOOL = "#/$defs/Tool"
TOOL_CHOICE = "#/$defs/ChatPrompt/properties/tool_choice"
_LOG_REQUEST = "#/$defs/LogRequest"

_TIMES = ("request_start_time", "request_end_time")
_BLUEPRINTS = ("input", "output")
_MAX_REASON = 160


class Unfit(ValueError):
    """A log that cannot be stored at all: a field it cannot do without does not fit."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A log body cut to the hosted schema, and what was cut (empty: it fitted as sent)."""

    body: dict[str, Any]
    removed: tuple[str, ...] = ()


@functools.cache
def log_request_schema() -> dict[str, Any]:
    """The copied LogRequest schema (parsed once; do not modify it)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator(pointer: str) -> Any:
    schema = log_request_schema()
    return jsonschema_rs.validator_for(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": pointer}
    )


@functools.cache
def _node(pointer: str) -> dict[str, Any]:
    node: Any = log_request_schema()
    for part in pointer.removeprefix("#/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[_unescape(part)]
    result: dict[str, Any] = node
    return result


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


@functools.cache
def content_types() -> frozenset[str]:
    """The `type`s of the content blocks the hosted schema has."""
    mapping = _node(CONTENT_BLOCK).get("discriminator", {}).get("mapping", {})
    return frozenset(mapping)


def fits(pointer: str, value: Any) -> bool:
    """Whether `value` fits the schema part at `pointer` (e.g. CONTENT_BLOCK, TOOL)."""
    return bool(_validator(pointer).is_valid(value))


def problems(body: Any, *, limit: int = 5) -> list[str]:
    """Why `body` does not fit LogRequest (at most `limit` reasons; empty when it fits)."""
    found = []
    for error in _validator(_LOG_REQUEST).iter_errors(_probe(body)):
        found.append(f"{_path(error.instance_path) or 'body'}: {_short(error.message)}")
        if len(found) >= limit:
            break
    return found


def fit(body: Any) -> Fitted:
    """`body` without the parts the hosted LogRequest schema refuses (see the module doc).

    Raises Unfit when what does not fit is a field a log cannot do without.
    """
    if not isinstance(body, Mapping):
        raise Unfit("a log must be a JSON object")
    probe = _probe(body)
    if _validator(_LOG_REQUEST).is_valid(probe):
        return Fitted(dict(body))
    schema = _node(_LOG_REQUEST)
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    removed: list[str] = []
    out: dict[str, Any] = {}
    for key, value in probe.items():
        if key not in properties:
            out[key] = value
            continue
        kept = _prune(value, f"{_LOG_REQUEST}/properties/{_escape(key)}", key, removed)
        if not isinstance(kept, _Gone):
            out[key] = kept
        elif key in _BLUEPRINTS:
            out[key] = _empty_blueprint(value)
            removed.append(f"{key} (stored empty): {kept.reason}")
        elif key in required:
            raise Unfit(f"{key}: {kept.reason}")
        else:
            removed.append(f"{key}: {kept.reason}")
    missing = [key for key in schema.get("required", ()) if key not in out]
    if missing:
        raise Unfit(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
    for key in _TIMES:  # the number as sent; the backend reads both forms
        out[key] = body[key]
    if not _validator(_LOG_REQUEST).is_valid(_probe(out)):  # a gap in _prune: fail closed
        raise Unfit("; ".join(problems(out)) or "does not fit the hosted LogRequest schema")
    return Fitted(out, tuple(removed))


def _probe(body: Any) -> Any:
    """`body` with epoch-second times as the ISO text the schema asks for (the leniency)."""
    if not isinstance(body, Mapping):
        return body
    probe = dict(body)
    for key in _TIMES:
        value = probe.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                if math.isfinite(value):
                    probe[key] = datetime.fromtimestamp(value, UTC).isoformat()
            except (OverflowError, OSError, ValueError):
                pass  # left a number: the schema refuses it
    return probe


@dataclass(frozen=True, slots=True)
class _Gone:
    """A part that cannot be kept, and why."""

    reason: str


def _prune(value: Any, pointer: str, path: str, removed: list[str]) -> Any:
    """`value` with what does not fit the schema at `pointer` removed (noted in `removed`),
    or _Gone when it cannot fit at all. Never modifies `value`."""
    if fits(pointer, value):
        return value
    schema = _node(pointer)
    if "$ref" in schema:
        return _prune(value, schema["$ref"], path, removed)
    if "oneOf" in schema or "anyOf" in schema:
        return _prune_choice(value, pointer, schema, path, removed)
    if isinstance(value, dict) and ("properties" in schema or "additionalProperties" in schema):
        return _prune_object(value, pointer, schema, path, removed)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        kept = []
        for index, item in enumerate(value):
            result = _prune(item, f"{pointer}/items", f"{path}[{index}]", removed)
            if isinstance(result, _Gone):
                removed.append(f"{path}[{index}]: {result.reason}")
            else:
                kept.append(result)
        return kept if fits(pointer, kept) else _Gone(_first_problem(pointer, kept))
    limit = schema.get("maxLength")
    if isinstance(value, str) and isinstance(limit, int) and fits(pointer, value[:limit]):
        removed.append(f"{path}: cut to {limit} characters")
        return value[:limit]
    return _Gone(_first_problem(pointer, value))


def _prune_choice(
    value: Any, pointer: str, schema: Mapping[str, Any], path: str, removed: list[str]
) -> Any:
    key = "oneOf" if "oneOf" in schema else "anyOf"
    discriminator = schema.get("discriminator")
    if isinstance(discriminator, Mapping) and isinstance(value, dict):
        name = discriminator.get("propertyName")
        mapping = discriminator.get("mapping") or {}
        if name in value:
            kind = value[name]
            if isinstance(kind, str) and kind in mapping:
                return _prune(value, mapping[kind], path, removed)
            return _Gone(f"{name} {_short(repr(kind), 60)} is not one the hosted schema accepts")
    # The first branch the value can be cut to (a branch of its JSON type first).
    branches = range(len(schema[key]))
    reason: str | None = None
    for index in sorted(branches, key=lambda i: not _same_type(value, schema[key][i])):
        attempt: list[str] = []
        result = _prune(value, f"{pointer}/{key}/{index}", path, attempt)
        if not isinstance(result, _Gone) and fits(pointer, result):
            removed.extend(attempt)
            return result
        if reason is None and isinstance(result, _Gone):
            reason = result.reason  # the branch of its type says best what is wrong
    if isinstance(discriminator, Mapping) and isinstance(value, dict):
        reason = f"{discriminator.get('propertyName')} is missing"
    return _Gone(reason or _first_problem(pointer, value))


def _prune_object(
    value: dict[str, Any], pointer: str, schema: Mapping[str, Any], path: str,
    removed: list[str],
) -> Any:
    properties: Mapping[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    required = set(schema.get("required", ()))
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key in properties:
            result = _prune(item, f"{pointer}/properties/{_escape(key)}", where, removed)
        elif isinstance(extra, dict):
            result = _prune(item, f"{pointer}/additionalProperties", where, removed)
        elif extra is False:
            result = _Gone("not a field the hosted schema accepts")
        else:
            result = item
        if not isinstance(result, _Gone):
            out[key] = result
        elif key in required:
            return _Gone(f"{key}: {result.reason}")
        else:
            removed.append(f"{where}: {result.reason}")
    missing = sorted(required - set(out))
    if missing:
        return _Gone(f"{missing[0]} is missing")
    return out if fits(pointer, out) else _Gone(_first_problem(pointer, out))


def _same_type(value: Any, branch: Mapping[str, Any]) -> bool:
    kind = branch.get("type")
    if kind is None:
        return "$ref" in branch and isinstance(value, dict)
    names = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    expected = names.get(kind)
    if expected is not None:
        return isinstance(value, expected)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first_problem(pointer: str, value: Any) -> str:
    for error in _validator(pointer).iter_errors(value):
        return _short(error.message)
    return "does not fit"


def _short(text: str, limit: int = _MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _empty_blueprint(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and (value.get("type") == "chat" or "messages" in value):
        return {"type": "chat", "messages": [], "input_variables": []}
    return {"type": "completion", "content": [], "input_variables": []}

