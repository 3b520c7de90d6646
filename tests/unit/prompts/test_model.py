"""metadata.model → ChatOpenAI."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import SecretStr

from promptserve.prompts.errors import TemplateConversionError
from promptserve.prompts.model import build_chat_model, chat_model_arguments

MODEL: dict[str, Any] = {
    "provider": "openai",
    "name": "gpt-4o-mini",
    "parameters": {
        "temperature": 0.2,
        "max_tokens": 99,
        "top_p": 0.9,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.3,
        "stop": ["END"],
        "seed": 7,
        "response_format": {"type": "json_object"},
        "user": "someone",
        "logprobs": None,
    },
}


def test_parameters_are_carried_over() -> None:
    model = build_chat_model(MODEL, api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    assert model.model_name == "gpt-4o-mini"
    assert (model.temperature, model.max_tokens, model.top_p) == (0.2, 99, 0.9)
    assert (model.frequency_penalty, model.presence_penalty) == (0.1, 0.3)
    assert (model.stop, model.seed, model.logprobs) == (["END"], 7, None)
    assert model.model_kwargs == {"response_format": {"type": "json_object"}, "user": "someone"}
    assert model.stream_usage is True
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "sk-test"
    payload = model._get_request_payload([("human", "hi")])
    assert payload["response_format"] == {"type": "json_object"}
    assert payload["max_completion_tokens"] == 99


def test_overrides_and_keyless_local_servers() -> None:
    model = build_chat_model(
        MODEL,
        api_key=None,
        base_url="http://127.0.0.1:9/v1",
        model_name_override="smollm2",
        streaming_usage=False,
        parameter_overrides={"temperature": 0.0},
    )
    assert model.model_name == "smollm2"
    assert model.temperature == 0.0
    assert model.stream_usage is False
    assert model.openai_api_key is not None  # a placeholder: the openai client needs one


def test_no_key_and_no_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="API key"):
        build_chat_model(MODEL, api_key=None, base_url=None)


def test_client_settings_never_come_from_a_template(caplog: pytest.LogCaptureFixture) -> None:
    metadata = {**MODEL, "parameters": {"base_url": "http://evil", "api_key": "x", "stream": True}}
    with caplog.at_level(logging.WARNING, logger="promptserve.prompts.model"):
        arguments = chat_model_arguments(metadata, template_name="t")
    assert arguments == {"model": "gpt-4o-mini"}
    assert "ignoring model parameter 'base_url'" in caplog.text


def test_responses_api_type() -> None:
    arguments = chat_model_arguments({**MODEL, "parameters": {}, "api_type": "responses"})
    assert arguments == {"model": "gpt-4o-mini", "use_responses_api": True}


@pytest.mark.parametrize(
    ("metadata", "where", "why"),
    [
        ({**MODEL, "provider": "anthropic"}, "metadata.model.provider", "'anthropic' is not"),
        ({**MODEL, "name": ""}, "metadata.model.name", "model name is required"),
        ({**MODEL, "api_type": "images"}, "metadata.model.api_type", "'images' is not"),
        ({**MODEL, "parameters": [1]}, "metadata.model.parameters", "must be an object"),
        (
            {**MODEL, "parameters": {"temperature": "hot"}},
            "metadata.model.parameters",
            "invalid model parameters",
        ),
    ],
)
def test_unusable_model_metadata_names_the_template(
    metadata: dict[str, Any], where: str, why: str
) -> None:
    with pytest.raises(TemplateConversionError) as info:
        build_chat_model(metadata, api_key="k", base_url=None, template_name="ads")
    assert (info.value.template_name, info.value.path) == ("ads", where)
    assert why in str(info.value)
