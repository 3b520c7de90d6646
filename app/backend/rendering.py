"""Template variables of prompt blueprints: extraction and rendering (pure functions).

Blueprints are the PromptLayer JSON shape (docs/PROMPTLAYER_API.md §4). Two template formats exist:
`f-string` (`{var}`, `{{`/`}}` escape, missing or null → "") and `jinja2` (sandboxed,
undefined → ""). A message (or completion template) picks its format with `template_format`;
the default is f-string. Nothing here touches I/O, so other parts (template conversion,
the CLI publisher) may import it freely.
"""

from __future__ import annotations

import copy
import string
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = [
    "TemplateSyntaxError",
    "complete_input_variables",
    "input_variables_of",
    "render_blueprint",
    "render_text",
    "text_variables",
]

# Undefined renders as "" and tolerates attribute access on a missing value ({{ a.b }}).
_JINJA = SandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)
_FORMATTER = string.Formatter()


class TemplateSyntaxError(ValueError):
    """A text block that cannot be parsed in its template format."""


def text_variables(text: str, template_format: str = "f-string") -> list[str]:
    """Names of the variables one text uses, in order of first use."""
    if template_format == "jinja2":
        try:
            ast = _JINJA.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateSyntaxError(f"invalid jinja2 template: {exc.message}") from exc
        # find_undeclared_variables returns a set; sort for a stable answer.
        return sorted(jinja2.meta.find_undeclared_variables(ast))
    names: list[str] = []
    try:
        for _, field, _, _ in _FORMATTER.parse(text):
            if field is None:
                continue
            if not field:
                raise TemplateSyntaxError("invalid f-string template: positional field {}")
            # `{user.name}` and `{items[0]}` depend on the variable `user` / `items`.
            root = field.split(".", 1)[0].split("[", 1)[0]
            if root not in names:
                names.append(root)
    except ValueError as exc:
        if isinstance(exc, TemplateSyntaxError):
            raise
        raise TemplateSyntaxError(f"invalid f-string template: {exc}") from exc
    return names


def _blocks_variables(content: Any, template_format: str) -> list[str]:
    names: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                text = block.get("text")
                if isinstance(text, str):
                    names.extend(n for n in text_variables(text, template_format) if n not in names)
    return names


def _message_variables(message: dict[str, Any]) -> list[str]:
    if message.get("role") == "placeholder":
        name = message.get("name")
        return [name] if isinstance(name, str) and name else []
    return _blocks_variables(message.get("content"), _format_of(message))


def input_variables_of(blueprint: dict[str, Any]) -> list[str]:
    """Every variable a chat or completion blueprint uses (placeholders give their `name`)."""
    names: list[str] = []
    if blueprint.get("type") == "chat":
        for message in blueprint.get("messages") or []:
            if isinstance(message, dict):
                names.extend(n for n in _message_variables(message) if n not in names)
    else:
        names = _blocks_variables(blueprint.get("content"), _format_of(blueprint))
    return names


def complete_input_variables(blueprint: dict[str, Any]) -> dict[str, Any]:
    """A copy of `blueprint` with `input_variables` filled in where missing (all levels)."""
    result = copy.deepcopy(blueprint)
    if result.get("type") == "chat":
        for message in result.get("messages") or []:
            if isinstance(message, dict) and message.get("role") != "placeholder":
                message.setdefault("input_variables", _message_variables(message))
                if message["input_variables"] is None:
                    message["input_variables"] = _message_variables(message)
    if result.get("input_variables") is None:
        result["input_variables"] = input_variables_of(result)
    return result


def _format_of(node: dict[str, Any]) -> str:
    fmt = node.get("template_format")
    return fmt if isinstance(fmt, str) else "f-string"


@lru_cache(maxsize=512)
def _compile_jinja(text: str) -> jinja2.Template:
    return _JINJA.from_string(text)


def _render_fstring(text: str, variables: dict[str, Any]) -> str:
    parts: list[str] = []
    for literal, field, spec, conversion in _FORMATTER.parse(text):
        parts.append(literal)
        if field is None:
            continue
        value = variables.get(field)
        if value is None:
            # Missing or null renders as empty (matches the PromptLayer service).
            continue
        if conversion:
            value = _FORMATTER.convert_field(value, conversion)
        parts.append(format(value, spec) if spec else str(value))
    return "".join(parts)


def render_text(text: str, variables: dict[str, Any], template_format: str = "f-string") -> str:
    """Render one text; a text that cannot be rendered is returned unchanged."""
    try:
        if template_format == "jinja2":
            return _compile_jinja(text).render(**variables)
        return _render_fstring(text, variables)
    except (jinja2.TemplateError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        # Rendering is a convenience on read: never fail a fetch because of one bad block.
        return text


def _render_blocks(content: Any, variables: dict[str, Any], template_format: str) -> Any:
    if not isinstance(content, list):
        return content
    rendered = []
    for block in content:
        if (
            isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        ):
            block = {**block, "text": render_text(block["text"], variables, template_format)}
        rendered.append(block)
    return rendered


def _render_messages(messages: list[Any], variables: dict[str, Any]) -> list[Any]:
    rendered: list[Any] = []
    for message in messages:
        if not isinstance(message, dict):
            rendered.append(message)
            continue
        if message.get("role") == "placeholder":
            spliced = variables.get(str(message.get("name")))
            # A placeholder given a list of messages is replaced by them; otherwise kept.
            if isinstance(spliced, list):
                rendered.extend(copy.deepcopy(spliced))
            else:
                rendered.append(copy.deepcopy(message))
            continue
        fmt = _format_of(message)
        rendered.append(
            {**message, "content": _render_blocks(message.get("content"), variables, fmt)}
        )
    return rendered


def render_blueprint(blueprint: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """A rendered copy of `blueprint`: `variables` substituted into every text block."""
    result = copy.deepcopy(blueprint)
    if result.get("type") == "chat" and isinstance(result.get("messages"), list):
        result["messages"] = _render_messages(result["messages"], variables)
    elif "content" in result:
        result["content"] = _render_blocks(result.get("content"), variables, _format_of(result))
    return result
