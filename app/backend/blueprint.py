"""Prompt blueprints: validation at publish, and the `llm_kwargs` an OpenAI call would take."""

from __future__ import annotations

from typing import Any

from app.backend.rendering import TemplateSyntaxError, text_variables

__all__ = ["BlueprintError", "build_llm_kwargs", "validate_blueprint"]

_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer", "placeholder"})
_FORMATS = frozenset({"f-string", "jinja2"})
_OPENAI_PROVIDERS = frozenset({"openai", "openai.azure"})


class BlueprintError(ValueError):
    """A blueprint that cannot be stored; the message names the offending field."""


def _check_format(node: dict[str, Any], where: str) -> str:
    fmt = node.get("template_format", "f-string")
    if fmt is None:
        return "f-string"
    if fmt not in _FORMATS:
        raise BlueprintError(f"{where}.template_format must be 'f-string' or 'jinja2'")
    return str(fmt)


def _check_names(value: Any, where: str) -> None:
    if value is not None and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        raise BlueprintError(f"{where}.input_variables must be a list of strings")


def _check_blocks(content: Any, fmt: str, where: str) -> None:
    if not isinstance(content, list):
        raise BlueprintError(f"{where}.content must be a list of content blocks")
    for i, block in enumerate(content):
        here = f"{where}.content[{i}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BlueprintError(f"{here} must be an object with a string 'type'")
        if block["type"] == "text":
            if not isinstance(block.get("text"), str):
                raise BlueprintError(f"{here}.text must be a string")
            try:
                text_variables(block["text"], fmt)
            except TemplateSyntaxError as exc:
                raise BlueprintError(f"{here}.text: {exc}") from exc


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise BlueprintError(f"{where} must be an object")
    role = message.get("role")
    if role not in _ROLES:
        raise BlueprintError(f"{where}.role must be one of {', '.join(sorted(_ROLES))}")
    if role == "placeholder":
        if not isinstance(message.get("name"), str) or not message["name"]:
            raise BlueprintError(f"{where}.name must be a non-empty string for a placeholder")
        return
    _check_names(message.get("input_variables"), where)
    _check_blocks(message.get("content"), _check_format(message, where), where)


def validate_blueprint(blueprint: Any, *, where: str = "prompt_template") -> None:
    """Raise BlueprintError unless `blueprint` is a well-formed chat or completion template."""
    if not isinstance(blueprint, dict):
        raise BlueprintError(f"{where} must be an object")
    kind = blueprint.get("type")
    _check_names(blueprint.get("input_variables"), where)
    if kind == "chat":
        messages = blueprint.get("messages")
        if not isinstance(messages, list):
            raise BlueprintError(f"{where}.messages must be a list")
        for i, message in enumerate(messages):
            _check_message(message, f"{where}.messages[{i}]")
    elif kind == "completion":
        _check_blocks(blueprint.get("content"), _check_format(blueprint, where), where)
    else:
        raise BlueprintError(f"{where}.type must be 'chat' or 'completion'")


def _openai_content(content: Any) -> Any:
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    if all(b.get("type") == "text" for b in blocks):
        return "".join(str(b.get("text", "")) for b in blocks)
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("type") == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif block.get("type") == "image_url":
            parts.append({"type": "image_url", "image_url": block.get("image_url")})
    return parts


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "role": message["role"],
        "content": _openai_content(message.get("content")),
    }
    for key in ("name", "tool_calls", "function_call", "tool_call_id"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def build_llm_kwargs(blueprint: dict[str, Any], metadata: Any) -> dict[str, Any] | None:
    """The OpenAI call kwargs for `blueprint` (already rendered), or None for other providers."""
    model = metadata.get("model") if isinstance(metadata, dict) else None
    if not isinstance(model, dict) or model.get("provider") not in _OPENAI_PROVIDERS:
        return None
    if not isinstance(model.get("name"), str):
        return None
    parameters = model.get("parameters")
    kwargs: dict[str, Any] = {"model": model["name"]}
    if blueprint.get("type") == "chat":
        kwargs["messages"] = [
            _openai_message(m)
            for m in blueprint.get("messages") or []
            # A placeholder nobody filled has nothing to send.
            if isinstance(m, dict) and m.get("role") in _ROLES - {"placeholder"}
        ]
        for key in ("tools", "tool_choice", "functions", "function_call"):
            if blueprint.get(key) is not None:
                kwargs[key] = blueprint[key]
    else:
        kwargs["prompt"] = _openai_content(blueprint.get("content"))
    if isinstance(parameters, dict):
        kwargs.update(parameters)
    return kwargs
