"""Blueprint → LangChain prompt conversion."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate

from promptserve.prompts.convert import prompt_from_blueprint, prompt_from_template
from promptserve.prompts.errors import TemplateConversionError


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def message(role: str, *texts: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": [text(t) for t in texts], **extra}


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "chat", "messages": list(messages), **extra}


def convert(blueprint: dict[str, Any]) -> Any:
    return prompt_from_blueprint(blueprint, template_name="slogans")


def test_chat_fstring_renders_like_the_registry() -> None:
    prompt = convert(
        chat(
            message("system", "You are a helpful copywriter."),
            message("user", "A slogan for {product}, in {{braces}}."),
            input_variables=["product"],
        )
    )
    assert isinstance(prompt, ChatPromptTemplate)
    assert prompt.input_variables == ["product"]
    assert prompt.invoke({"product": "toasters"}).to_messages() == [
        SystemMessage("You are a helpful copywriter."),
        HumanMessage("A slogan for toasters, in {braces}."),
    ]


def test_roles_map_to_langchain_messages() -> None:
    prompt = convert(
        chat(
            message("developer", "Rules.", name="ops"),
            message("user", "Hi"),
            message("assistant", "Hello {who}"),
        )
    )
    messages = prompt.invoke({"who": "you"}).to_messages()
    assert messages[0] == SystemMessage("Rules.", additional_kwargs={"name": "ops"})
    assert isinstance(messages[1], HumanMessage)
    assert messages[2] == AIMessage("Hello you")


def test_jinja2_message_renders_without_warnings() -> None:
    prompt = convert(
        chat(
            message(
                "user",
                "{% for item in items.split(',') %}[{{ item }}]{% endfor %} for {{ who }}",
                template_format="jinja2",
            )
        )
    )
    assert prompt.input_variables == ["items", "who"]
    rendered = prompt.invoke({"items": "a,b", "who": "me"}).to_messages()
    assert rendered == [HumanMessage("[a][b] for me")]


def test_text_blocks_of_one_message_are_concatenated() -> None:
    prompt = convert(chat(message("system", "One {a}.", "Two.")))
    assert prompt.invoke({"a": "x"}).to_messages() == [SystemMessage("One x.Two.")]


def test_placeholder_becomes_messages_placeholder() -> None:
    prompt = convert(
        chat(
            message("system", "Be brief."),
            {"role": "placeholder", "name": "history"},
            message("user", "{question}"),
            input_variables=["question"],
        )
    )
    assert isinstance(prompt.messages[1], MessagesPlaceholder)
    assert sorted(prompt.input_variables) == ["history", "question"]
    messages = prompt.invoke({"history": [("human", "hi"), ("ai", "hey")], "question": "q"})
    assert [m.type for m in messages.to_messages()] == ["system", "human", "ai", "human"]


def test_image_url_blocks_become_literal_image_parts() -> None:
    url = "https://example.com/{not-a-variable}.png"
    prompt = convert(
        chat(
            {
                "role": "user",
                "content": [
                    text("Describe {thing}"),
                    {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                    text("Thanks"),
                ],
            }
        )
    )
    assert prompt.input_variables == ["thing"]
    (rendered,) = prompt.invoke({"thing": "this"}).to_messages()
    assert rendered.content == [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
        {"type": "text", "text": "Thanks"},
    ]


def test_assistant_tool_calls_and_tool_results_are_kept() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    prompt = convert(
        chat(
            message("user", "Find {q}"),
            {"role": "assistant", "content": [], "tool_calls": [call]},
            message("tool", "42", tool_call_id="c1"),
        )
    )
    assert isinstance(prompt.messages[1], AIMessage)  # literal: nothing to fill in
    messages = prompt.invoke({"q": "x"}).to_messages()
    assert messages[1].tool_calls == [
        {"name": "lookup", "args": {"q": 1}, "id": "c1", "type": "tool_call"}
    ]
    assert messages[2] == ToolMessage("42", tool_call_id="c1")


def test_assistant_with_tool_calls_and_variables_stays_a_template() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    prompt = convert(chat(message("assistant", "Calling for {who}", tool_calls=[call])))
    (rendered,) = prompt.invoke({"who": "me"}).to_messages()
    assert rendered.content == "Calling for me"
    assert rendered.tool_calls[0]["name"] == "f"


def test_completion_fstring_and_jinja2() -> None:
    fstring = convert({"type": "completion", "content": [text("Say {word}.")]})
    assert isinstance(fstring, PromptTemplate)
    assert fstring.format(word="hi") == "Say hi."
    jinja = convert(
        {"type": "completion", "template_format": "jinja2", "content": [text("Say {{ word }}.")]}
    )
    assert jinja.format(word="hi") == "Say hi."


def test_prompt_from_template_uses_the_response_name() -> None:
    response = {"prompt_name": "ads", "prompt_template": {"type": "chat", "messages": []}}
    with pytest.raises(TemplateConversionError, match="'ads'") as info:
        prompt_from_template(response)
    assert info.value.template_name == "ads"
    with pytest.raises(TemplateConversionError, match="no prompt_template"):
        prompt_from_template({"prompt_name": "ads"})


@pytest.mark.parametrize(
    ("blueprint", "where", "why"),
    [
        (chat(message("usr", "x")), "messages[0].role", "unknown role 'usr'"),
        (chat(message("user", "{a")), "messages[0].content[0].text", "malformed f-string"),
        (chat(message("user", "{}")), "messages[0].content[0].text", "positional field"),
        (chat(message("user", "{a.b}")), "messages[0].content[0].text", "attribute access"),
        (
            chat(message("user", "{% if %}", template_format="jinja2")),
            "messages[0].content[0].text",
            "malformed jinja2",
        ),
        (
            chat(message("user", "x", template_format="mustache")),
            "messages[0].template_format",
            "unknown template_format 'mustache'",
        ),
        (
            chat({"role": "user", "content": [{"type": "video"}]}),
            "messages[0].content[0].type",
            "unknown content block type 'video'",
        ),
        (
            chat({"role": "user", "content": [{"type": "media", "media": {}}]}),
            "messages[0].content[0].type",
            "'media' is not supported",
        ),
        (
            chat({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}),
            "messages[0].content[0].type",
            "only supported in user messages",
        ),
        (
            chat({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
            "messages[0].content[0].image_url.url",
            "needs a non-empty url",
        ),
        (chat({"role": "placeholder"}), "messages[0].name", "non-empty name"),
        (chat(message("tool", "r")), "messages[0].tool_call_id", "needs a tool_call_id"),
        (chat(message("tool", "{r}", tool_call_id="c")), "messages[0].content", "cannot use"),
        (chat(message("function", "r")), "messages[0].name", "needs a name"),
        (
            chat(message("assistant", "x", tool_calls=[{"id": "c"}])),
            "messages[0].tool_calls",
            "expected a list",
        ),
        (chat(), "messages", "non-empty list"),
        (chat("not a message"), "messages[0]", "must be an object"),  # type: ignore[arg-type]
        (
            chat(message("user", "{a} {b}"), input_variables=["a", "c"]),
            "input_variables",
            "used but not declared: b; declared but not used: c",
        ),
        ({"type": "completion", "content": "{x"}, "content[0].text", "malformed f-string"),
        ({"type": "embedding"}, "type", "unknown blueprint type 'embedding'"),
    ],
)
def test_failures_name_the_template_the_place_and_the_reason(
    blueprint: dict[str, Any], where: str, why: str
) -> None:
    with pytest.raises(TemplateConversionError) as info:
        convert(blueprint)
    error = info.value
    assert (error.template_name, error.path) == ("slogans", where)
    assert why in error.reason
    assert str(error).startswith(f"template 'slogans' cannot be converted: {where}: ")
