"""A template's `metadata.model` → `ChatOpenAI`, the one model client of every chain.

Completion templates use `ChatOpenAI` too: their `PromptTemplate` yields a `StringPromptValue`,
which a chat model receives as one user message. That keeps one client (and one tracing path)
for every chain, and works with OpenAI-compatible servers that only speak chat completions.

Parameters PromptLayer stores (`temperature`, `max_tokens`, `top_p`, penalties, `stop`,
`seed`, ...) become ChatOpenAI fields; other request parameters (`response_format`, `user`,
...) go to `model_kwargs`. Client settings (keys, URLs, timeouts) never come from a template:
they come from the server's settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from promptserve.prompts.errors import TemplateConversionError

__all__ = ["OPENAI_COMPATIBLE_PROVIDERS", "build_chat_model", "chat_model_arguments"]

logger = logging.getLogger(__name__)

# Providers whose API is OpenAI's chat completions (PromptLayer's provider names).
OPENAI_COMPATIBLE_PROVIDERS = frozenset({"openai", "openrouter"})

# Request parameters ChatOpenAI has a field for; PromptLayer name → ChatOpenAI field.
_FIELD_PARAMETERS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop": "stop",
    "seed": "seed",
    "n": "n",
    "logprobs": "logprobs",
    "top_logprobs": "top_logprobs",
    "logit_bias": "logit_bias",
    "reasoning_effort": "reasoning_effort",
    "verbosity": "verbosity",
    "service_tier": "service_tier",
}

# Keys that shape the request itself; the chain owns them, so a template's copy is dropped.
_CHAIN_OWNED = frozenset(
    {"model", "messages", "prompt", "stream", "stream_options", "tools", "tool_choice",
     "functions", "function_call"}
)

# A placeholder key for servers that ignore keys (the bundled local model): the openai
# client refuses to start without one.
_NO_KEY = "not-needed"


def chat_model_arguments(
    model_metadata: Mapping[str, Any], *, template_name: str = "<unnamed>"
) -> dict[str, Any]:
    """ChatOpenAI keyword arguments from `metadata.model` (no key, URL or usage settings)."""
    provider = model_metadata.get("provider")
    if provider not in OPENAI_COMPATIBLE_PROVIDERS:
        raise TemplateConversionError(
            template_name,
            f"provider {provider!r} is not supported; chains call OpenAI-compatible APIs "
            f"({', '.join(sorted(OPENAI_COMPATIBLE_PROVIDERS))})",
            path="metadata.model.provider",
        )
    name = model_metadata.get("name")
    if not isinstance(name, str) or not name:
        raise TemplateConversionError(
            template_name, "a model name is required", path="metadata.model.name"
        )
    arguments: dict[str, Any] = {"model": name}
    api_type = model_metadata.get("api_type")
    if api_type == "responses":
        arguments["use_responses_api"] = True
    elif api_type not in (None, "chat-completions"):
        raise TemplateConversionError(
            template_name,
            f"api_type {api_type!r} is not supported (use 'chat-completions' or 'responses')",
            path="metadata.model.api_type",
        )
    parameters = model_metadata.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise TemplateConversionError(
            template_name, "parameters must be an object", path="metadata.model.parameters"
        )
    arguments.update(_split_parameters(parameters, template_name))
    return arguments


def _split_parameters(parameters: Mapping[str, Any], template_name: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    client_fields = set(ChatOpenAI.model_fields) | {
        f.alias for f in ChatOpenAI.model_fields.values() if f.alias
    }
    for key, value in parameters.items():
        if value is None:
            continue  # PromptLayer sends unset parameters as null.
        if key in _FIELD_PARAMETERS:
            fields[_FIELD_PARAMETERS[key]] = value
        elif key in _CHAIN_OWNED or key in client_fields:
            # Client settings (api_key, base_url, timeout...) must not come from a registry.
            logger.warning("template %r: ignoring model parameter %r", template_name, key)
        else:
            extra[key] = value
    if extra:
        fields["model_kwargs"] = extra
    return fields


def build_chat_model(
    model_metadata: Mapping[str, Any],
    *,
    api_key: str | None,
    base_url: str | None,
    model_name_override: str | None = None,
    streaming_usage: bool = True,
    parameter_overrides: Mapping[str, Any] | None = None,
    template_name: str = "<unnamed>",
    http_async_client: Any | None = None,
) -> ChatOpenAI:
    """The ChatOpenAI a template asks for, pointed at `base_url` with `api_key`.

    `http_async_client` lets the server own the connection pool (and close it on shutdown);
    without it langchain-openai shares one cached pool per process, bound to the first
    event loop that used it.
    """
    metadata = dict(model_metadata)
    if parameter_overrides:
        metadata["parameters"] = {**(metadata.get("parameters") or {}), **parameter_overrides}
    if model_name_override and not metadata.get("name"):
        metadata["name"] = model_name_override
    arguments = chat_model_arguments(metadata, template_name=template_name)
    if model_name_override:
        # e.g. the bundled local model serves one model whatever the template names.
        arguments["model"] = model_name_override
    if api_key is None and base_url is None:
        raise ValueError("an OpenAI API key is needed when no OpenAI base URL is set")
    try:
        return ChatOpenAI(
            api_key=SecretStr(api_key or _NO_KEY),
            base_url=base_url,
            stream_usage=streaming_usage,
            http_async_client=http_async_client,
            **arguments,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise TemplateConversionError(
            template_name, f"invalid model parameters: {exc}", path="metadata.model.parameters"
        ) from exc
