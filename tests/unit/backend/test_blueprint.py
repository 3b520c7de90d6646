"""Blueprint validation and OpenAI llm_kwargs."""

from __future__ import annotations

import pytest

from app.backend.blueprint import BlueprintError, build_llm_kwargs, validate_blueprint

TEXT = [{"type": "text", "text": "hi {x}"}]


@pytest.mark.parametrize(
    ("blueprint", "fragment"),
    [
        ([], "must be an object"),
        ({"type": "image"}, "type must be"),
        ({"type": "chat"}, "messages must be a list"),
        ({"type": "chat", "messages": ["x"]}, "messages[0] must be an object"),
        ({"type": "chat", "messages": [{"role": "boss", "content": TEXT}]}, "messages[0].role"),
        ({"type": "chat", "messages": [{"role": "placeholder"}]}, "messages[0].name"),
        (
            {"type": "chat", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "content[0]",
        ),
        (
            {"type": "chat", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "content[0].text",
        ),
        (
            {
                "type": "chat",
                "messages": [{"role": "user", "content": TEXT, "template_format": "mustache"}],
            },
            "template_format",
        ),
        ({"type": "completion", "content": TEXT, "input_variables": "x"}, "input_variables"),
        ({"type": "completion", "content": [{"type": "text", "text": "{"}]}, "f-string"),
    ],
)
def test_invalid(blueprint: object, fragment: str) -> None:
    with pytest.raises(BlueprintError) as caught:
        validate_blueprint(blueprint)
    assert fragment in str(caught.value)


def test_valid_passes_through_other_blocks() -> None:
    validate_blueprint(
        {
            "type": "chat",
            "messages": [
                {
                    "role": "user",
                    "content": [*TEXT, {"type": "image_url", "image_url": {"url": "u"}}],
                },
                {"role": "placeholder", "name": "history"},
                {"role": "assistant", "content": [], "tool_calls": [{"id": "1"}]},
            ],
        }
    )


def test_llm_kwargs() -> None:
    metadata = {"model": {"provider": "openai", "name": "gpt", "parameters": {"max_tokens": 5}}}
    chat = {
        "type": "chat",
        "messages": [
            {"role": "user", "content": TEXT, "name": "ann"},
            {"role": "user", "content": [*TEXT, {"type": "image_url", "image_url": {"url": "u"}}]},
            {"role": "placeholder", "name": "h"},
            {"role": "tool", "content": TEXT, "tool_call_id": "c1"},
        ],
        "tools": [{"type": "function"}],
    }
    assert build_llm_kwargs(chat, metadata) == {
        "model": "gpt",
        "messages": [
            {"role": "user", "content": "hi {x}", "name": "ann"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi {x}"},
                    {"type": "image_url", "image_url": {"url": "u"}},
                ],
            },
            {"role": "tool", "content": "hi {x}", "tool_call_id": "c1"},
        ],
        "tools": [{"type": "function"}],
        "max_tokens": 5,
    }
    assert build_llm_kwargs({"type": "completion", "content": TEXT}, metadata) == {
        "model": "gpt",
        "prompt": "hi {x}",
        "max_tokens": 5,
    }
    assert build_llm_kwargs(chat, {"model": {"provider": "anthropic", "name": "c"}}) is None
    assert build_llm_kwargs(chat, {}) is None
