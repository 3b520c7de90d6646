"""PromptLayer blueprints → LangChain prompts (pure; no I/O).

The input is a registry template as returned by a GET with `skip_input_variable_rendering`
(docs/PROMPTLAYER_API.md §1.1, blueprint shape §4):

- `chat` → `ChatPromptTemplate`. Roles: system and developer → system, user → human,
  assistant → ai, tool → `ToolMessage`, function → `FunctionMessage`, placeholder →
  `MessagesPlaceholder(name)`. Each message formats with its own `template_format`
  (`f-string`, the default, or `jinja2`, which LangChain renders in a sandbox).
- `completion` → `PromptTemplate`.

Text blocks of one message are concatenated, as OpenAI reads content parts. `image_url`
blocks (user messages only) become image parts of a multimodal message, with the URL kept
literal as PromptLayer does. Assistant messages keep their `tool_calls` / `function_call`.
Tool and function messages are literal (LangChain has no template for them), so they may not
use variables. Anything else raises `TemplateConversionError` naming the template, the place
and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, FunctionMessage, ToolMessage
from langchain_core.prompts import (
    BasePromptTemplate,
    ChatPromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
)
from langchain_core.prompts.chat import (
    AIMessagePromptTemplate,
    HumanMessagePromptTemplate,
    SystemMessagePromptTemplate,
)
from langchain_core.prompts.dict import DictPromptTemplate
from langchain_core.prompts.image import ImagePromptTemplate
from langchain_core.prompts.message import BaseMessagePromptTemplate
from langchain_core.prompts.string import StringPromptTemplate

from promptserve.prompts._variables import escape_literal, text_variables
from promptserve.prompts.errors import TemplateConversionError

__all__ = ["ROLES", "prompt_from_blueprint", "prompt_from_template"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function", "placeholder")

# Block types PromptLayer knows but a LangChain prompt cannot carry.
_UNSUPPORTED_BLOCKS = frozenset(
    {"media", "media_variable", "thinking", "code", "output_media", "server_tool_use"}
)

_Format = Literal["f-string", "jinja2"]

# Constructors (prompt=..., additional_kwargs=...) of the templated roles.
_TEMPLATE_CLASSES: dict[str, Callable[..., BaseMessagePromptTemplate]] = {
    "system": SystemMessagePromptTemplate,
    "developer": SystemMessagePromptTemplate,
    "user": HumanMessagePromptTemplate,
    "assistant": AIMessagePromptTemplate,
}

_MessageLike = BaseMessagePromptTemplate | BaseMessage


class _Problem(Exception):
    """Internal: a reason at a path; turned into TemplateConversionError at the top."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def prompt_from_template(template: Mapping[str, Any]) -> BasePromptTemplate[Any]:
    """The LangChain prompt of a registry GET response (its `prompt_name`, `prompt_template`)."""
    name = str(template.get("prompt_name") or "<unnamed>")
    blueprint = template.get("prompt_template")
    if not isinstance(blueprint, Mapping):
        raise TemplateConversionError(name, "the response has no prompt_template object")
    return prompt_from_blueprint(blueprint, template_name=name)


def prompt_from_blueprint(
    blueprint: Mapping[str, Any], *, template_name: str
) -> BasePromptTemplate[Any]:
    """The LangChain prompt for one blueprint; TemplateConversionError says where and why not."""
    try:
        kind = blueprint.get("type")
        if kind == "chat":
            prompt: BasePromptTemplate[Any] = _chat_prompt(blueprint)
            placeholders = _placeholder_names(blueprint)
        elif kind == "completion":
            prompt = _completion_prompt(blueprint)
            placeholders = set()
        else:
            raise _Problem("type", f"unknown blueprint type {kind!r} (use 'chat' or 'completion')")
        _check_declared_variables(blueprint, prompt.input_variables, placeholders)
    except _Problem as problem:
        raise TemplateConversionError(template_name, problem.reason, path=problem.path) from None
    return prompt


def _chat_prompt(blueprint: Mapping[str, Any]) -> ChatPromptTemplate:
    messages = blueprint.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Problem("messages", "a chat template needs a non-empty list of messages")
    converted = [_message(message, f"messages[{i}]") for i, message in enumerate(messages)]
    try:
        return ChatPromptTemplate(messages=converted)
    except ValueError as exc:
        raise _Problem("messages", str(exc)) from exc


def _completion_prompt(blueprint: Mapping[str, Any]) -> PromptTemplate:
    fmt = _template_format(blueprint, "")
    parts = _content_parts(blueprint.get("content"), "content", fmt, allow_images=False)
    text = "".join(part for part in parts if isinstance(part, str))
    try:
        return PromptTemplate.from_template(text, template_format=fmt)
    except ValueError as exc:
        raise _Problem("content", str(exc)) from exc


def _message(message: Any, path: str) -> _MessageLike:
    if not isinstance(message, Mapping):
        raise _Problem(path, "a message must be an object")
    role = message.get("role")
    if role == "placeholder":
        name = message.get("name")
        if not isinstance(name, str) or not name:
            raise _Problem(f"{path}.name", "a placeholder message needs a non-empty name")
        return MessagesPlaceholder(variable_name=name)
    if role in _TEMPLATE_CLASSES:
        return _templated_message(message, str(role), path)
    if role in ("tool", "function"):
        return _literal_message(message, str(role), path)
    raise _Problem(f"{path}.role", f"unknown role {role!r} (known: {', '.join(ROLES)})")


def _templated_message(message: Mapping[str, Any], role: str, path: str) -> _MessageLike:
    fmt = _template_format(message, path)
    parts = _content_parts(
        message.get("content"), f"{path}.content", fmt, allow_images=role == "user"
    )
    extra: dict[str, Any] = {}
    if isinstance(message.get("name"), str):
        # langchain-openai sends `additional_kwargs["name"]` as the message's name.
        extra["name"] = message["name"]
    if role == "assistant":
        extra.update(_assistant_calls(message, path))
    cls = _TEMPLATE_CLASSES[role]
    if all(isinstance(part, str) for part in parts):
        text = "".join(part for part in parts if isinstance(part, str))
        if role == "assistant" and extra and not text_variables(text, fmt):
            # Nothing to fill in: keep it as the literal AIMessage it is (tool calls parsed).
            return AIMessage(content=text, additional_kwargs=extra)
        try:
            prompt = PromptTemplate.from_template(text, template_format=fmt)
            return cls(prompt=prompt, additional_kwargs=extra)
        except ValueError as exc:
            raise _Problem(f"{path}.content", str(exc)) from exc
    prompts: list[StringPromptTemplate | ImagePromptTemplate | DictPromptTemplate] = []
    for part in parts:
        if isinstance(part, str):
            try:
                prompts.append(PromptTemplate.from_template(part, template_format=fmt))
            except ValueError as exc:
                raise _Problem(f"{path}.content", str(exc)) from exc
        else:
            prompts.append(part)
    return cls(prompt=prompts, additional_kwargs=extra)


def _literal_message(message: Mapping[str, Any], role: str, path: str) -> BaseMessage:
    fmt = _template_format(message, path)
    parts = _content_parts(message.get("content"), f"{path}.content", fmt, allow_images=False)
    text = "".join(part for part in parts if isinstance(part, str))
    if text_variables(text, fmt):
        raise _Problem(f"{path}.content", f"{role} messages cannot use input variables")
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _Problem(f"{path}.tool_call_id", "a tool message needs a tool_call_id")
        return ToolMessage(content=text, tool_call_id=call_id)
    name = message.get("name")
    if not isinstance(name, str) or not name:
        raise _Problem(f"{path}.name", "a function message needs a name")
    return FunctionMessage(content=text, name=name)


def _assistant_calls(message: Mapping[str, Any], path: str) -> dict[str, Any]:
    calls: dict[str, Any] = {}
    tool_calls = message.get("tool_calls")
    if tool_calls:
        if not isinstance(tool_calls, list) or not all(_is_call(c) for c in tool_calls):
            raise _Problem(
                f"{path}.tool_calls",
                "expected a list of {id, type: function, function: {name, arguments}}",
            )
        # OpenAI's shape; AIMessage parses it into `tool_calls` and langchain-openai sends it.
        calls["tool_calls"] = [dict(c) for c in tool_calls]
    function_call = message.get("function_call")
    if function_call:
        if not isinstance(function_call, Mapping) or not isinstance(function_call.get("name"), str):
            raise _Problem(f"{path}.function_call", "expected {name, arguments}")
        calls["function_call"] = dict(function_call)
    return calls


def _is_call(call: Any) -> bool:
    function = call.get("function") if isinstance(call, Mapping) else None
    return isinstance(function, Mapping) and isinstance(function.get("name"), str)


def _template_format(node: Mapping[str, Any], path: str) -> _Format:
    fmt = node.get("template_format")
    if fmt is None or fmt == "f-string":
        return "f-string"
    if fmt == "jinja2":
        return "jinja2"
    where = f"{path}.template_format" if path else "template_format"
    raise _Problem(where, f"unknown template_format {fmt!r} (use 'f-string' or 'jinja2')")


def _content_parts(
    content: Any, path: str, fmt: str, *, allow_images: bool
) -> list[str | ImagePromptTemplate]:
    """Consecutive text blocks joined into one string; image blocks as literal image prompts."""
    if content is None:
        return [""]
    if isinstance(content, str):
        # Not the documented shape, but unambiguous: one text block.
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _Problem(path, "content must be a list of blocks")
    parts: list[str | ImagePromptTemplate] = []
    texts: list[str] = []
    for i, block in enumerate(content):
        block_path = f"{path}[{i}]"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text" and isinstance(block, Mapping):
            texts.append(_text_of(block, block_path, fmt))
        elif kind == "image_url" and isinstance(block, Mapping):
            if not allow_images:
                raise _Problem(
                    f"{block_path}.type", "image_url blocks are only supported in user messages"
                )
            if texts:
                parts.append("".join(texts))
                texts = []
            parts.append(_image_of(block, block_path))
        elif kind in _UNSUPPORTED_BLOCKS:
            raise _Problem(
                f"{block_path}.type",
                f"content block type {kind!r} is not supported in LangChain prompts",
            )
        else:
            raise _Problem(f"{block_path}.type", f"unknown content block type {kind!r}")
    if texts or not parts:
        parts.append("".join(texts))
    return parts


def _text_of(block: Mapping[str, Any], path: str, fmt: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _Problem(f"{path}.text", "a text block needs a string `text`")
    try:
        text_variables(text, fmt)
    except ValueError as exc:
        raise _Problem(f"{path}.text", str(exc)) from exc
    return text


def _image_of(block: Mapping[str, Any], path: str) -> ImagePromptTemplate:
    image = block.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else None
    if not isinstance(url, str) or not url:
        raise _Problem(f"{path}.image_url.url", "an image_url block needs a non-empty url")
    template: dict[str, Any] = {"url": escape_literal(url, "f-string")}
    if isinstance(image, Mapping) and isinstance(image.get("detail"), str):
        template["detail"] = escape_literal(image["detail"], "f-string")
    # PromptLayer never renders image URLs, so the URL is a literal: no input variables.
    return ImagePromptTemplate(template=template, input_variables=[], template_format="f-string")


def _placeholder_names(blueprint: Mapping[str, Any]) -> set[str]:
    messages = blueprint.get("messages")
    return {
        str(m.get("name"))
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, Mapping) and m.get("role") == "placeholder"
    }


def _check_declared_variables(
    blueprint: Mapping[str, Any], used: Sequence[str], placeholders: set[str]
) -> None:
    declared = blueprint.get("input_variables")
    if declared is None:
        return  # Not declared: the registry computes it; nothing to disagree with.
    if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
        raise _Problem("input_variables", "input_variables must be a list of names")
    # Placeholder names may or may not be listed; other names must agree both ways.
    missing = sorted(set(used) - placeholders - set(declared))
    extra = sorted(set(declared) - set(used))
    if missing or extra:
        detail = "; ".join(
            text
            for text in (
                f"used but not declared: {', '.join(missing)}" if missing else "",
                f"declared but not used: {', '.join(extra)}" if extra else "",
            )
            if text
        )
        raise _Problem(
            "input_variables", f"declared variables do not match the messages ({detail})"
        )
