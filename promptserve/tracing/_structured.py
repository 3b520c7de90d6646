"""Whether a chat answer fits the JSON schema its call asked for (`response_format`).

A model asked for structured output can still answer something else (a small local model,
a provider without strict mode). Such a call is logged as an error, not as a success, so the
registry's history shows which prompt version produced answers nobody could use. Schemas are
compiled once each (jsonschema-rs) and kept by their JSON text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import jsonschema_rs
from langchain_core.outputs import ChatGeneration, LLMResult

__all__ = ["OUTPUT_SCHEMA_ERROR", "answer_problem", "json_schema_of", "schema_problem",
           "validator_for"]

OUTPUT_SCHEMA_ERROR = "OutputSchemaError"
"""How a log's error_message begins when the answer missed its schema (error_type is the
hosted set's UNKNOWN_ERROR: the set has no kind for it)."""


def json_schema_of(response_format: Any) -> Mapping[str, Any] | None:
    """The schema of an OpenAI `response_format` of type `json_schema`, else None."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, Mapping) else None
    return schema if isinstance(schema, Mapping) else None


@functools.lru_cache(maxsize=256)
def _compiled(schema_json: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(schema_json))


def validator_for(schema: Mapping[str, Any]) -> Any:
    """A compiled validator for `schema` (cached)."""
    return _compiled(json.dumps(schema, sort_keys=True))


def answer_problem(text: str, schema: Mapping[str, Any]) -> str | None:
    """Why `text` is not a JSON document fitting `schema`, or None when it is."""
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"the model's answer is not JSON ({error})"
    errors = list(validator_for(schema).iter_errors(value))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(part) for part in first.instance_path) or "(top level)"
    return f"the model's answer does not fit the schema at {where}: {first.message}"


def schema_problem(invocation_params: Mapping[str, Any], response: LLMResult) -> str | None:
    """Why a chat call's answer misses the schema it asked for; None if it asked none or fits."""
    schema = json_schema_of(invocation_params.get("response_format"))
    if schema is None:
        return None
    generations = response.generations[0] if response.generations else []
    if not generations or not isinstance(generations[0], ChatGeneration):
        return "the model gave no answer"
    message = generations[0].message
    if getattr(message, "tool_calls", None):
        return None  # a tool call answers in its own shape
    content = message.content
    text = content if isinstance(content, str) else "".join(
        part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content
    )
    return answer_problem(text, schema)
