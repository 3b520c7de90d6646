"""Pure conversion of LangChain callback data into PromptLayer blueprints and log fields.

Nothing here does I/O or keeps state; the handler calls these from inside callbacks, so they
must be cheap and must tolerate odd input (unknown message types, non-JSON values).

Two steps. `chat_input`, `chat_output`, ... convert faithfully: LangChain's standard blocks
become PromptLayer's, anything else passes through as sent. `hosted_blueprint`
(`_hosted_blueprint`, re-exported here) then makes a blueprint fit the hosted PromptLayer's
`LogRequest` schema, mapping or dropping (with notes) what it would refuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
)
from langchain_core.outputs import ChatGeneration, LLMResult

from promptserve.tracing._hosted_blueprint import (
    DROPPED_KEY,
    MAX_TAG,
    hosted_blueprint,
    hosted_tags,
    iso_time,
    notes_text,
    thinking_block,
)
from promptserve.tracing._types import Blueprint

__all__ = [
    "DROPPED_KEY",
    "MAX_TAG",
    "api_type",
    "chat_input",
    "chat_output",
    "completion_input",
    "completion_output",
    "empty_output",
    "function_name",
    "hosted_blueprint",
    "hosted_tags",
    "iso_time",
    "message_to_blueprint",
    "notes_text",
    "parameters",
    "provider_and_model",
    "stringify_variable",
    "thinking_block",
    "token_usage",
]

# Keys that configure the client rather than the model call, or may carry credentials.
_DROPPED_PARAMS = frozenset(
    {
        "_type", "model", "model_name", "stream", "stream_usage", "base_url", "openai_api_base",
        "api_base", "openai_organization", "organization", "default_headers", "default_query",
        "http_client", "http_async_client", "openai_proxy", "max_retries", "request_timeout",
    }
)
_SECRET_KEY = re.compile(r"api_?key|secret|password|authorization|credential|access_token", re.I)
# Tool definitions belong to the prompt blueprint (docs/PROMPTLAYER_API.md §4), not to the
# parameters.
_BLUEPRINT_KEYS = ("tools", "tool_choice", "functions", "function_call")
_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})


def _jsonable(value: Any) -> Any:
    """`value` reduced to JSON types; unknown objects become their string form."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return _jsonable(dump())
        except Exception:  # a pydantic *class* or a broken model: fall through to str
            pass
    return str(value)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _content_part(part: Any) -> dict[str, Any] | None:
    """One LangChain content part as a PromptLayer content block (None: not content)."""
    if isinstance(part, str):
        return _text(part)
    if not isinstance(part, Mapping):
        return _text(str(part))
    kind = part.get("type")
    if kind == "text":
        return _text(str(part.get("text", "")))
    if kind == "image_url":
        url = part.get("image_url")
        return {"type": "image_url", "image_url": dict(url) if isinstance(url, Mapping)
                else {"url": str(url)}}
    if kind == "image" and ("url" in part or "base64" in part):
        # LangChain standard image block → the OpenAI shape PromptLayer understands.
        if "url" in part:
            return {"type": "image_url", "image_url": {"url": str(part["url"])}}
        mime = part.get("mime_type", "image/png")
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{part['base64']}"}}
    if kind in ("reasoning", "thinking"):
        return thinking_block(part)
    if kind in ("tool_use", "tool_call", "tool_call_chunk", "function_call"):
        return None  # carried by the message's tool_calls instead
    return dict(_jsonable(part))


def _content(content: str | list[Any]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text(content)]
    return [block for part in content if (block := _content_part(part)) is not None]


def _tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [
        {"id": call.get("id") or "", "type": "function",
         "function": {"name": call["name"], "arguments": json.dumps(_jsonable(call["args"]))}}
        for call in message.tool_calls
    ]
    calls += [
        {"id": call.get("id") or "", "type": "function",
         "function": {"name": call.get("name") or "", "arguments": call.get("args") or ""}}
        for call in message.invalid_tool_calls
    ]
    return calls


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        explicit = message.additional_kwargs.get("__openai_role__")
        return "developer" if explicit == "developer" else "system"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, FunctionMessage):
        return "function"
    if isinstance(message, ChatMessage) and message.role in _ROLES:
        return message.role
    return "user"


def message_to_blueprint(message: BaseMessage) -> dict[str, Any]:
    """One LangChain message as a PromptLayer blueprint message."""
    role = _role(message)
    out: dict[str, Any] = {"role": role, "content": _content(message.content),
                           "input_variables": [], "template_format": "f-string"}
    if message.name:
        out["name"] = message.name
    if isinstance(message, AIMessage):
        calls = _tool_calls(message)
        if calls:
            out["tool_calls"] = calls
            # An assistant turn that only calls tools has no text; drop the empty block.
            out["content"] = [b for b in out["content"] if b != _text("")]
        refusal = message.additional_kwargs.get("refusal")  # OpenAI chat completions
        if isinstance(refusal, str) and refusal:
            out["content"].append({"type": "refusal", "refusal": refusal})
        legacy = message.additional_kwargs.get("function_call")
        if legacy:
            out["function_call"] = _jsonable(legacy)
    elif isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    elif isinstance(message, FunctionMessage):
        out["name"] = message.name
    return out


def chat_input(
    messages: Sequence[BaseMessage], invocation_params: Mapping[str, Any] | None = None
) -> Blueprint:
    """Chat model input (plus any bound tools) as a chat blueprint."""
    blueprint: Blueprint = {
        "type": "chat",
        "messages": [message_to_blueprint(m) for m in messages],
        "input_variables": [],
    }
    for key in _BLUEPRINT_KEYS:
        value = (invocation_params or {}).get(key)
        if value is not None:
            blueprint[key] = _jsonable(value)
    return blueprint


def _generations(response: LLMResult) -> list[Any]:
    return [g for batch in response.generations for g in batch]


def chat_output(response: LLMResult) -> Blueprint:
    """A chat model's result as a chat blueprint holding the assistant message(s)."""
    messages = []
    for generation in _generations(response):
        if isinstance(generation, ChatGeneration):
            messages.append(message_to_blueprint(generation.message))
        else:
            messages.append(message_to_blueprint(AIMessage(content=generation.text)))
    return {"type": "chat", "messages": messages, "input_variables": []}


def completion_input(prompt: str) -> Blueprint:
    """A completion LLM's prompt as a completion blueprint."""
    return {"type": "completion", "content": [_text(prompt)], "input_variables": [],
            "template_format": "f-string"}


def completion_output(response: LLMResult) -> Blueprint:
    """A completion LLM's result as a completion blueprint."""
    texts = [g.text for g in _generations(response)] or [""]
    return {"type": "completion", "content": [_text(t) for t in texts], "input_variables": [],
            "template_format": "f-string"}


def empty_output(kind: str) -> Blueprint:
    """The output blueprint of a failed call."""
    if kind == "chat":
        return {"type": "chat", "messages": [], "input_variables": []}
    return {"type": "completion", "content": [], "input_variables": [],
            "template_format": "f-string"}


def parameters(invocation_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Model parameters worth logging: no client settings, no secrets, no unset values."""
    out: dict[str, Any] = {}
    for key, value in (invocation_params or {}).items():
        if value is None or key in _DROPPED_PARAMS or key in _BLUEPRINT_KEYS:
            continue
        if _SECRET_KEY.search(key):
            continue
        out[key] = _jsonable(value)
    return out


def _provider_from_serialized(serialized: Mapping[str, Any] | None) -> str | None:
    ident = (serialized or {}).get("id")
    if isinstance(ident, list) and len(ident) >= 2:
        # e.g. ["langchain", "chat_models", "openai", "ChatOpenAI"] → "openai"
        module = str(ident[-2]).removeprefix("langchain_").split(".")[-1]
        name = str(ident[-1]).lower()
        if "azure" in name or module == "azure_openai":
            return "openai.azure"
        return module
    return None


# LangChain's provider names (`ls_provider`, module names) → PromptLayer's.
_PROVIDERS = {
    "azure": "openai.azure", "azure_openai": "openai.azure", "google_genai": "google",
    "google_vertexai": "vertexai", "vertex_ai": "vertexai", "mistralai": "mistral",
    "amazon_bedrock": "amazon.bedrock", "bedrock": "amazon.bedrock",
    "bedrock_converse": "amazon.bedrock", "anthropic_bedrock": "anthropic.bedrock",
}
# Hosts of OpenAI-compatible APIs PromptLayer names as providers of their own.
_HOSTS = ((".openai.azure.com", "openai.azure"), (".cognitiveservices.azure.com", "openai.azure"),
          ("openrouter.ai", "openrouter"))


def _provider_of_host(serialized: Mapping[str, Any] | None) -> str | None:
    """openai.azure or openrouter for an OpenAI client pointed at their API, else None."""
    kwargs = (serialized or {}).get("kwargs") or {}
    url = kwargs.get("openai_api_base") or kwargs.get("base_url") or kwargs.get("azure_endpoint")
    if not isinstance(url, str):
        return None
    host = (urlsplit(url).hostname or "").lower()
    return next((p for suffix, p in _HOSTS
                 if host == suffix.lstrip(".") or host.endswith(suffix)), None)


def provider_and_model(
    serialized: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """PromptLayer provider and model name of an LLM run: the provider of the client in use
    (PromptLayer's names: openai, openai.azure, openrouter, anthropic, google, ...)."""
    params = invocation_params or {}
    meta = metadata or {}
    kwargs = (serialized or {}).get("kwargs") or {}
    provider = meta.get("ls_provider") or _provider_from_serialized(serialized)
    provider = _PROVIDERS.get(str(provider), provider)
    if provider == "openai":
        provider = _provider_of_host(serialized) or provider
    if not provider:
        provider = str(params.get("_type") or "langchain")
    model = (
        meta.get("ls_model_name") or params.get("model") or params.get("model_name")
        or kwargs.get("model") or kwargs.get("model_name") or params.get("deployment_name")
        or "unknown"
    )
    return str(provider), str(model)


def function_name(serialized: Mapping[str, Any] | None, name: str | None = None) -> str:
    """`langchain.<ClassName>` of the model that made the call."""
    ident = (serialized or {}).get("id")
    if isinstance(ident, list) and ident:
        return f"langchain.{ident[-1]}"
    return f"langchain.{name or (serialized or {}).get('name') or 'LLM'}"


def token_usage(response: LLMResult) -> tuple[int, int]:
    """(input, output) tokens: from message usage_metadata (also set on streamed runs),
    else from llm_output["token_usage"]."""
    inputs = outputs = 0
    found = False
    for generation in _generations(response):
        usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
        if usage:
            found = True
            inputs += int(usage.get("input_tokens") or 0)
            outputs += int(usage.get("output_tokens") or 0)
    if found:
        return inputs, outputs
    usage = (response.llm_output or {}).get("token_usage") or {}
    if not isinstance(usage, Mapping):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def stringify_variable(value: Any) -> str:
    """A prompt input variable as text: messages as a transcript, structures as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return get_buffer_string([value])
    if isinstance(value, Sequence) and value and all(isinstance(v, BaseMessage) for v in value):
        return get_buffer_string(list(value))
    if value is None:
        return ""
    if isinstance(value, int | float | bool):
        return json.dumps(value)
    try:
        return json.dumps(_jsonable(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


# -- provider and API ----------------------------------------------------------------------


def api_type(
    provider: str, serialized: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
) -> str | None:
    """The PromptLayer api_type of a call: which API of its provider the client used."""
    if provider in ("openai", "openai.azure", "openrouter"):
        return "responses" if _uses_responses_api(serialized, invocation_params) else (
            "chat-completions")
    if provider in ("anthropic", "anthropic.bedrock"):
        return "messages"
    if provider in ("google", "vertexai"):
        return "generate-content"
    if provider == "amazon.bedrock":
        name = _class_name(serialized)
        return "converse" if "Converse" in name else "invoke-model"
    return None


_RESPONSES_ONLY = frozenset({"context_management", "include", "previous_response_id",
                             "reasoning", "text", "truncation"})


def _uses_responses_api(
    serialized: Mapping[str, Any] | None, invocation_params: Mapping[str, Any] | None
) -> bool:
    """Whether ChatOpenAI sent this call to the Responses API (its own rules, from what the
    callback sees: the model's settings and the call's parameters)."""
    kwargs = (serialized or {}).get("kwargs") or {}
    params = invocation_params or {}
    explicit = kwargs.get("use_responses_api", params.get("use_responses_api"))
    if isinstance(explicit, bool):
        return explicit
    if kwargs.get("output_version") == "responses/v1" or kwargs.get("use_previous_response_id"):
        return True
    if any(kwargs.get(k) is not None for k in _RESPONSES_ONLY) or _RESPONSES_ONLY & set(params):
        return True
    tools = params.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, Mapping) and "type" in t and t["type"] != "function" for t in tools)


def _class_name(serialized: Mapping[str, Any] | None) -> str:
    ident = (serialized or {}).get("id")
    return str(ident[-1]) if isinstance(ident, list) and ident else ""
