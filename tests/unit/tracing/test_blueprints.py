"""Pure conversion of LangChain data into PromptLayer blueprints and log fields."""

from __future__ import annotations

import json

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult

from promptserve.tracing import _blueprints as bp


def _text(t: str) -> dict[str, str]:
    return {"type": "text", "text": t}


def test_chat_input_roles_and_text_blocks() -> None:
    blueprint = bp.chat_input(
        [SystemMessage("be nice"), HumanMessage("hi", name="bob"), AIMessage("hello")]
    )
    assert blueprint["type"] == "chat"
    assert blueprint["input_variables"] == []
    roles = [(m["role"], m["content"]) for m in blueprint["messages"]]
    assert roles == [("system", [_text("be nice")]), ("user", [_text("hi")]),
                     ("assistant", [_text("hello")])]
    assert blueprint["messages"][1]["name"] == "bob"
    assert all(m["template_format"] == "f-string" for m in blueprint["messages"])


def test_tool_calls_and_tool_results() -> None:
    call = AIMessage("", tool_calls=[{"id": "c1", "name": "weather", "args": {"city": "Oslo"}}])
    result = ToolMessage("cold", tool_call_id="c1")
    assistant, tool = bp.chat_input([call, result])["messages"]
    assert assistant["content"] == []
    assert assistant["tool_calls"] == [
        {"id": "c1", "type": "function",
         "function": {"name": "weather", "arguments": json.dumps({"city": "Oslo"})}}
    ]
    assert tool == {"role": "tool", "content": [_text("cold")], "tool_call_id": "c1",
                    "input_variables": [], "template_format": "f-string"}


def test_multimodal_parts_pass_through() -> None:
    message = HumanMessage(content=[
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
        {"type": "image", "base64": "AAAA", "mime_type": "image/jpeg"},
        {"type": "media", "media": {"x": 1}},
    ])
    content = bp.message_to_blueprint(message)["content"]
    assert content == [
        _text("what is this?"),
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "media", "media": {"x": 1}},
    ]


def test_developer_and_chat_message_roles() -> None:
    dev = SystemMessage("rules", additional_kwargs={"__openai_role__": "developer"})
    assert bp.message_to_blueprint(dev)["role"] == "developer"
    assert bp.message_to_blueprint(ChatMessage(content="x", role="assistant"))["role"] == (
        "assistant"
    )
    assert bp.message_to_blueprint(ChatMessage(content="x", role="weird"))["role"] == "user"


def test_bound_tools_go_into_the_blueprint_not_parameters() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    params = {"model": "m", "temperature": 0.1, "tools": tools, "tool_choice": "auto"}
    blueprint = bp.chat_input([HumanMessage("x")], params)
    assert blueprint["tools"] == tools
    assert blueprint["tool_choice"] == "auto"
    assert bp.parameters(params) == {"temperature": 0.1}


def test_chat_output_from_streamed_chunk_with_tool_calls() -> None:
    chunk = AIMessageChunk(
        content="",
        tool_call_chunks=[{"id": "c9", "name": "f", "args": '{"a": 1}', "index": 0}],
        usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
    )
    result = LLMResult(generations=[[ChatGenerationChunk(message=chunk)]], llm_output=None)
    blueprint = bp.chat_output(result)
    (message,) = blueprint["messages"]
    assert message["role"] == "assistant"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert bp.token_usage(result) == (7, 3)


def test_token_usage_from_llm_output_when_messages_have_none() -> None:
    result = LLMResult(
        generations=[[Generation(text="hi")]],
        llm_output={"token_usage": {"prompt_tokens": 4, "completion_tokens": 2}},
    )
    assert bp.token_usage(result) == (4, 2)
    assert bp.token_usage(LLMResult(generations=[[Generation(text="x")]])) == (0, 0)


def test_completion_blueprints() -> None:
    assert bp.completion_input("Say hi") == {
        "type": "completion", "content": [_text("Say hi")], "input_variables": [],
        "template_format": "f-string",
    }
    out = bp.completion_output(LLMResult(generations=[[Generation(text="hi!")]]))
    assert out["type"] == "completion"
    assert out["content"] == [_text("hi!")]
    assert bp.empty_output("completion")["content"] == []
    assert bp.empty_output("chat")["messages"] == []


def test_chat_output_from_plain_generation() -> None:
    result = LLMResult(generations=[[ChatGeneration(message=AIMessage("ok"))]])
    assert bp.chat_output(result)["messages"][0]["content"] == [_text("ok")]


def test_parameters_never_include_secrets_or_client_settings() -> None:
    params = {
        "model": "gpt", "model_name": "gpt", "_type": "openai-chat", "stream": False,
        "temperature": 0.3, "max_tokens": 10, "stop": None, "api_key": "sk-secret",
        "openai_api_key": "sk-secret", "azure_ad_token_secret": "x", "base_url": "http://x",
        "response_format": object(),
    }
    out = bp.parameters(params)
    assert set(out) == {"temperature", "max_tokens", "response_format"}
    assert isinstance(out["response_format"], str)
    assert "sk-secret" not in json.dumps(out)


def test_provider_and_model_detection() -> None:
    serialized = {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
                  "kwargs": {"model_name": "gpt-4o-mini"}}
    assert bp.provider_and_model(serialized, {}) == ("openai", "gpt-4o-mini")
    assert bp.provider_and_model(serialized, {"model": "gpt-4o"}) == ("openai", "gpt-4o")
    meta = {"ls_provider": "anthropic", "ls_model_name": "claude"}
    assert bp.provider_and_model({}, {}, meta) == ("anthropic", "claude")
    azure = {"id": ["langchain", "chat_models", "azure_openai", "AzureChatOpenAI"]}
    assert bp.provider_and_model(azure, {"deployment_name": "d"})[0] == "openai.azure"
    assert bp.provider_and_model(None, None) == ("langchain", "unknown")
    assert bp.function_name(serialized) == "langchain.ChatOpenAI"
    assert bp.function_name({}, "Fake") == "langchain.Fake"


def test_stringify_variable() -> None:
    assert bp.stringify_variable("x") == "x"
    assert bp.stringify_variable(3) == "3"
    assert bp.stringify_variable(None) == ""
    assert bp.stringify_variable({"a": [1]}) == '{"a": [1]}'
    history = [HumanMessage("hi"), AIMessage("hello")]
    assert bp.stringify_variable(history) == "Human: hi\nAI: hello"
