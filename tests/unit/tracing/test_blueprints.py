"""Pure conversion of LangChain data into PromptLayer blueprints and log fields."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
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
from promptserve.tracing import _hosted_schema as hosted


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


# -- the hosted LogRequest schema's shapes ------------------------------------------------------


def _fits_hosted(blueprint: dict[str, Any]) -> None:
    """`blueprint` as a log's input fits the copied hosted schema (python-jsonschema)."""
    body = {"provider": "openai", "model": "m", "input": blueprint,
            "output": {"type": "chat", "messages": []},
            "request_start_time": bp.iso_time(1.0), "request_end_time": bp.iso_time(2.0)}
    problems = [e.message for e in _HOSTED.iter_errors(body)]
    assert problems == []


_HOSTED = jsonschema.Draft202012Validator(hosted.log_request_schema())


def _blocks(*parts: Any) -> tuple[list[dict[str, Any]], list[str]]:
    blueprint = bp.chat_input([HumanMessage(content=list(parts))])
    fitted, notes = bp.hosted_blueprint(blueprint, "input")
    _fits_hosted(fitted)
    return fitted["messages"][0]["content"], notes


def test_refusals_become_text() -> None:
    assert _blocks({"type": "refusal", "refusal": "I can't"}) == ([_text("I can't")], [])
    message = AIMessage("", additional_kwargs={"refusal": "no, sorry"})
    out = bp.hosted_blueprint(bp.chat_output(LLMResult(
        generations=[[ChatGeneration(message=message)]])), "output")
    assert out == ({"type": "chat", "input_variables": [], "messages": [
        {"role": "assistant", "content": [_text(""), _text("no, sorry")],
         "input_variables": [], "template_format": "f-string"}]}, [])


def test_files_become_media_or_are_dropped_when_given_by_id() -> None:
    content, notes = _blocks(
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,QUJD",
                                  "filename": "a.pdf"}},                       # OpenAI chat
        {"type": "file", "base64": "QUJD", "mime_type": "application/pdf"},    # LangChain
        {"type": "file", "url": "https://x/a.pdf", "mime_type": "application/pdf"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "QUJD"}},                      # Anthropic
        {"type": "file", "file_id": "file-abc"},
        {"type": "file", "file": {"file_id": "file-def"}},
    )
    pdf = {"type": "media", "media": {"type": "application/pdf",
                                      "url": "data:application/pdf;base64,QUJD",
                                      "format": "base64"}}
    assert content == [pdf, pdf, {"type": "media", "media": {
        "type": "application/pdf", "url": "https://x/a.pdf", "format": "url"}}, pdf]
    assert notes == ["file block by file id file-abc in input.messages[0].content[4]",
                     "file block by file id file-def in input.messages[0].content[5]"]


def test_audio_and_video_become_media() -> None:
    content, notes = _blocks(
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}},
        {"type": "audio", "base64": "UklG", "mime_type": "audio/wav"},
        {"type": "video", "url": "https://x/v.mp4"},
        {"type": "audio", "file_id": "file-a"},
    )
    assert content == [
        {"type": "media", "media": {"type": "audio/mp3", "url": "data:audio/mp3;base64,UklG",
                                    "format": "base64"}},
        {"type": "media", "media": {"type": "audio/wav", "url": "data:audio/wav;base64,UklG",
                                    "format": "base64"}},
        {"type": "media", "media": {"type": "video/mp4", "url": "https://x/v.mp4",
                                    "format": "url"}},
    ]
    assert notes == ["audio block by file id file-a in input.messages[0].content[3]"]


def test_redacted_thinking_becomes_empty_thinking_and_says_so() -> None:
    content, notes = _blocks({"type": "redacted_thinking", "data": "EncRypTed"},
                             {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                             {"type": "reasoning", "id": "rs_1",
                              "summary": [{"type": "summary_text", "text": "plan"}]})
    assert content == [{"type": "thinking", "thinking": "", "signature": None},
                       {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                       {"type": "thinking", "thinking": "plan", "signature": None}]
    assert notes == ["the encrypted data of redacted thinking in input.messages[0].content[0]"]
    assert "EncRypTed" not in json.dumps(content)


def test_images_by_url_or_data_are_kept_by_file_id_dropped() -> None:
    content, notes = _blocks(
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif",
                                     "data": "R0lG"}},                         # Anthropic
        {"type": "image", "source_type": "url", "url": "https://x/c.png"},     # LangChain 0.3
        {"type": "input_image", "image_url": "https://x/d.png", "detail": "high"},
        {"type": "image", "file_id": "file-1"},
        {"type": "image", "source_type": "id", "id": "file-2"},
        {"type": "image_url", "image_url": {"file_id": "file-3"}},
    )
    assert content == [
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}},
        {"type": "image_url", "image_url": {"url": "https://x/c.png"}},
        {"type": "image_url", "image_url": {"url": "https://x/d.png", "detail": "high"}},
    ]
    assert notes == [f"{kind} block by file id file-{n} in input.messages[0].content[{n + 2}]"
                     for n, kind in ((1, "image"), (2, "image"), (3, "image_url"))]


def test_other_blocks_are_kept_when_they_fit_else_dropped_with_a_note() -> None:
    content, notes = _blocks({"type": "code", "code": "print(1)"},
                             {"type": "code", "source": "print(1)"},
                             {"type": "non_standard", "value": {"a": 1}},
                             {"type": "text-plain", "text": "notes", "mime_type": "text/plain"})
    assert content == [{"type": "code", "code": "print(1)"}, _text("notes")]
    assert notes == ["code block that does not fit in input.messages[0].content[1]",
                     "non_standard block in input.messages[0].content[2]"]


def test_completion_blueprints_are_fitted_too() -> None:
    blueprint = {**bp.completion_input("x"), "content": [_text("x"), {"type": "audio"}]}
    assert bp.hosted_blueprint(blueprint, "output") == (
        bp.completion_input("x"), ["audio block in output.content[1]"])


def _tools(tools: list[Any], tool_choice: Any = None, provider: str = "openai") -> Any:
    params = {"tools": tools, "tool_choice": tool_choice}
    fitted, notes = bp.hosted_blueprint(bp.chat_input([HumanMessage("x")], params), "input",
                                        provider)
    _fits_hosted(fitted)
    return fitted.get("tools"), fitted.get("tool_choice"), notes


def test_function_tools_of_every_provider_become_openai_function_tools() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "number"}}}
    tools, _, notes = _tools([
        {"type": "function", "function": {"name": "f", "description": "d",
                                          "parameters": schema, "strict": None}},
        {"type": "function", "name": "g", "parameters": schema, "strict": True},  # Responses
        {"name": "h", "description": "d", "input_schema": schema},              # Anthropic
        {"function_declarations": [{"name": "i", "parameters": schema}, {"name": "j"}]},
    ])
    assert tools == [
        {"type": "function", "function": {"name": "f", "description": "d",
                                          "parameters": schema}},
        {"type": "function", "function": {"name": "g", "parameters": schema, "strict": True}},
        {"type": "function", "function": {"name": "h", "description": "d",
                                          "parameters": schema}},
        {"type": "function", "function": {"name": "i", "parameters": schema}},
        {"type": "function", "function": {"name": "j"}},
    ]
    assert notes == []


def test_built_in_tools_become_hosted_built_in_tools_and_others_are_dropped() -> None:
    tools, _, notes = _tools([
        {"type": "web_search_preview", "search_context_size": "low"},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "computer_use_preview", "display_width": 1024},
        {"type": "function", "function": {"description": "no name"}},
        "not a tool",
    ], provider="anthropic")
    assert tools == [
        {"type": "web_search", "id": "web_search", "name": "web_search", "description": "",
         "provider": "anthropic",
         "config": {"search_context_size": "low", "type": "web_search_preview"}},
        {"type": "web_search", "id": "web_search", "name": "web_search", "description": "",
         "provider": "anthropic", "config": {"max_uses": 3, "type": "web_search_20250305"}},
    ]
    assert notes == [
        "tool computer_use_preview (a shape it does not accept) in input.tools[2]",
        "tool function (a shape it does not accept) in input.tools[3]",
        "a tool that is not an object in input.tools[4]",
    ]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("auto", "auto"), ("none", "none"), ("required", "required"), ("any", "required"),
        (True, "required"),
        ("weather", {"type": "function", "function": {"name": "weather"}}),
        ({"type": "function", "function": {"name": "w", "extra": 1}},
         {"type": "function", "function": {"name": "w"}}),
        ({"type": "function", "name": "w"}, {"type": "function", "function": {"name": "w"}}),
        ({"type": "tool", "name": "w"}, {"type": "function", "function": {"name": "w"}}),
        ({"type": "any"}, "required"), ({"type": "auto", "disable_parallel_tool_use": True},
                                        "auto"),
        ({"function_calling_config": {"mode": "ANY", "allowed_function_names": ["w"]}},
         {"type": "function", "function": {"name": "w"}}),
        ({"function_calling_config": {"mode": "NONE"}}, "none"),
    ],
)
def test_tool_choice_takes_a_shape_the_hosted_schema_accepts(given: Any, sent: Any) -> None:
    tools = [{"type": "function", "function": {"name": "w"}}]
    assert _tools(tools, given)[1:] == (sent, [])


def test_tool_choice_it_cannot_express_is_dropped_with_a_note() -> None:
    tools = [{"type": "function", "function": {"name": "w"}}]
    assert _tools(tools, {"type": "web_search_preview"})[1:] == (
        None, ["input.tool_choice (a shape it does not accept)"])
    allowed = {"type": "allowed_tools", "mode": "required", "tools": tools}
    assert _tools(tools, allowed)[1:] == ("required", ["the allowed tools of input.tool_choice"])


def test_legacy_functions_and_function_calls() -> None:
    params = {"functions": [{"name": "f", "parameters": {"type": "object"}}, {"x": 1}],
              "function_call": {"name": "f", "arguments": "{}"}}
    call = AIMessage("", additional_kwargs={"function_call": {"name": "f",
                                                              "arguments": {"a": 1}}})
    fitted, notes = bp.hosted_blueprint(bp.chat_input([call], params), "input")
    _fits_hosted(fitted)
    assert fitted["functions"] == [{"name": "f", "parameters": {"type": "object"}}]
    assert fitted["function_call"] == {"name": "f"}
    assert fitted["messages"][0]["function_call"] == {"name": "f", "arguments": '{"a": 1}'}
    assert notes == ["input.functions[1] (a shape it does not accept)"]


def test_long_tags_are_cut_to_512_characters() -> None:
    tags, notes = bp.hosted_tags(["short", "x" * 600, "y" * 512])
    assert tags == ["short", "x" * 512, "y" * 512]
    assert notes == ["tags[1] cut to 512 characters"]
    assert bp.hosted_tags(["a"]) == (["a"], [])


def test_notes_are_one_bounded_text() -> None:
    assert bp.notes_text(["a", "b"]) == "a; b"
    assert len(bp.notes_text(["n" * 700, "m" * 700])) == 1024


def test_times_are_iso_utc() -> None:
    assert bp.iso_time(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"


def test_api_type_follows_the_client() -> None:
    chat = {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}}
    assert bp.api_type("openai", chat, {}) == "chat-completions"
    assert bp.api_type("openai.azure", chat, {}) == "chat-completions"
    responses = {**chat, "kwargs": {"use_responses_api": True}}
    assert bp.api_type("openai", responses, {}) == "responses"
    assert bp.api_type("openai", {**chat, "kwargs": {"output_version": "responses/v1"}},
                       {}) == "responses"
    assert bp.api_type("openai", chat, {"tools": [{"type": "web_search_preview"}]}) == (
        "responses")
    assert bp.api_type("openai", chat, {"reasoning": {"effort": "low"}}) == "responses"
    assert bp.api_type("anthropic", {}, {}) == "messages"
    assert bp.api_type("google", {}, {}) == "generate-content"
    converse = {"id": ["langchain", "chat_models", "bedrock", "ChatBedrockConverse"]}
    assert bp.api_type("amazon.bedrock", converse, {}) == "converse"
    assert bp.api_type("fakelistchatmodel", {}, {}) is None


def test_provider_is_promptlayers_name_for_the_client_in_use() -> None:
    def chat(base_url: str) -> dict[str, Any]:
        return {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
                "kwargs": {"model_name": "m", "openai_api_base": base_url}}

    meta = {"ls_provider": "openai"}
    assert bp.provider_and_model(chat("https://openrouter.ai/api/v1"), {}, meta)[0] == (
        "openrouter")
    assert bp.provider_and_model(chat("https://me.openai.azure.com/openai"), {}, meta)[0] == (
        "openai.azure")
    assert bp.provider_and_model(chat("http://127.0.0.1:8080/v1"), {}, meta)[0] == "openai"
    assert bp.provider_and_model(chat("https://notopenrouter.ai.example"), {}, meta)[0] == (
        "openai")
    for ls_provider, provider in [("google_genai", "google"), ("google_vertexai", "vertexai"),
                                  ("mistralai", "mistral"), ("amazon_bedrock", "amazon.bedrock"),
                                  ("azure", "openai.azure"), ("anthropic", "anthropic")]:
        assert bp.provider_and_model({}, {}, {"ls_provider": ls_provider})[0] == provider
