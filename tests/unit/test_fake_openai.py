"""The fake OpenAI server as the real `ChatOpenAI` sees it: tool calls, tool results,
JSON-schema answers and plain echoes, invoked and streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import reduce
from operator import add
from typing import Any, Literal, cast

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr, ValidationError

from tests.utils.fake_openai import FakeOpenAI, default_tool_arguments, schema_instance
from tests.utils.servers import serve_in_thread

QUESTION = "what is 6 times 7"
REVIEW = "I love Ada's product, positive vibes"


@tool
def multiply(a: float, b: float) -> str:
    """Multiply two numbers."""
    return f"{a * b:g}"


class Review(BaseModel):
    name: str
    sentiment: Literal["positive", "negative", "neutral"]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, url


def chat(url: str, model: str = "fake", **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{url}/v1", api_key=SecretStr("x"), model=model, max_retries=0,
                      **kwargs)


def aggregate(chunks: Sequence[BaseMessage]) -> AIMessageChunk:
    assert chunks, "the stream yielded nothing"
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    return cast(AIMessageChunk, reduce(add, chunks))


def assert_usage(message: AIMessage, *, input_tokens: int, output_tokens: int) -> None:
    usage = message.usage_metadata
    assert usage is not None, "no usage reported"
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (
        input_tokens, output_tokens, input_tokens + output_tokens,
    )


def sse_events(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `data:` events of a streamed chat request, `[DONE]` last as a sentinel."""
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
    response.raise_for_status()
    data = [line.removeprefix("data: ") for line in response.text.splitlines() if line]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def test_plain_chat_still_echoes(served: tuple[FakeOpenAI, str]) -> None:
    _, url = served
    model = chat(url, stream_usage=True)
    assert model.invoke("hello there").content == "echo: hello there"
    streamed = aggregate(list(model.stream("hello there")))
    assert streamed.content == "echo: hello there"
    assert_usage(streamed, input_tokens=2, output_tokens=3)


def test_bound_tool_is_called_with_the_numbers_of_the_question(
    served: tuple[FakeOpenAI, str],
) -> None:
    fake, url = served
    message = chat(url).bind_tools([multiply]).invoke(QUESTION)
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "tool_calls"
    [call] = message.tool_calls
    assert call["name"] == "multiply"
    assert call["args"] == {"a": 6, "b": 7}
    assert call["id"] is not None and call["id"].startswith("call_")
    assert_usage(message, input_tokens=5, output_tokens=4)
    assert fake.requests[-1]["tools"][0]["function"]["name"] == "multiply"


def test_streamed_tool_call_merges_to_the_same_arguments(
    served: tuple[FakeOpenAI, str],
) -> None:
    _, url = served
    chunks = list(chat(url, stream_usage=True).bind_tools([multiply]).stream(QUESTION))
    pieces = [c for c in chunks if isinstance(c, AIMessageChunk) and c.tool_call_chunks]
    assert len(pieces) > 2, "the arguments should arrive in several pieces"
    message = aggregate(chunks)
    [merged] = message.tool_call_chunks
    assert merged["name"] == "multiply"
    assert merged["args"] is not None and json.loads(merged["args"]) == {"a": 6, "b": 7}
    [call] = message.tool_calls
    assert call["args"] == {"a": 6, "b": 7}
    assert call["id"] == merged["id"]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert_usage(message, input_tokens=5, output_tokens=4)


def test_tool_result_gets_a_plain_answer(served: tuple[FakeOpenAI, str]) -> None:
    fake, url = served
    model = chat(url).bind_tools([multiply])
    question = HumanMessage(QUESTION)
    asked = model.invoke([question])
    [call] = asked.tool_calls
    result = multiply.invoke(call)
    answer = model.invoke([question, asked, result])
    assert answer.content == "result: 42"
    assert not answer.tool_calls
    sent = fake.requests[-1]["messages"]
    assert sent[-1] == {"role": "tool", "content": "42", "tool_call_id": call["id"]}
    streamed = aggregate(list(model.stream([question, asked, result])))
    assert streamed.content == "result: 42"
    assert not streamed.tool_call_chunks


def test_tool_call_ids_are_unique(served: tuple[FakeOpenAI, str]) -> None:
    _, url = served
    model = chat(url).bind_tools([multiply])
    ids = {model.invoke(QUESTION).tool_calls[0]["id"] for _ in range(3)}
    assert len(ids) == 3


def test_tool_call_stream_follows_openai_delta_order(served: tuple[FakeOpenAI, str]) -> None:
    _, url = served
    body = {
        "model": "fake",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": QUESTION}],
        "tools": [{"type": "function", "function": {"name": "multiply", "parameters": {
            "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        }}}],
    }
    events = sse_events(url, body)
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert deltas[0] == {"role": "assistant", "content": None}
    [head] = deltas[1]["tool_calls"]
    assert head["index"] == 0 and head["id"].startswith("call_") and head["type"] == "function"
    assert head["function"] == {"name": "multiply", "arguments": ""}
    parts = [d["tool_calls"][0] for d in deltas[2:-1]]
    assert parts and all(set(p) == {"index", "function"} and p["index"] == 0 for p in parts)
    assert json.loads("".join(p["function"]["arguments"] for p in parts)) == {"a": 6, "b": 7}
    assert deltas[-1] == {}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 4


def test_tool_choice_none_and_named_tool(served: tuple[FakeOpenAI, str]) -> None:
    _, url = served

    @tool
    def shout(text: str, loud: bool) -> str:
        """Shout `text`."""
        return text.upper()

    model = chat(url)
    assert model.bind_tools([multiply, shout], tool_choice="none").invoke("hi").content == (
        "echo: hi"
    )
    [call] = model.bind_tools([multiply, shout], tool_choice="shout").invoke("hi").tool_calls
    assert call["name"] == "shout"
    assert call["args"] == {"text": "hi", "loud": False}


# langchain-openai dumps the SDK's streamed `parsed` snapshot and pydantic warns about it
# (langchain-ai/langchain#35538); the fake's wire format is not the cause.
STREAMED_PARSE_WARNING = "ignore:Pydantic serializer warnings:UserWarning"


def test_structured_output_fits_the_schema(served: tuple[FakeOpenAI, str]) -> None:
    fake, url = served
    structured = chat(url).with_structured_output(Review, method="json_schema")
    assert structured.invoke(REVIEW) == Review(name=REVIEW, sentiment="positive")
    sent = fake.requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Review"


@pytest.mark.filterwarnings(STREAMED_PARSE_WARNING)
def test_streamed_structured_output_fits_the_schema(served: tuple[FakeOpenAI, str]) -> None:
    fake, url = served
    structured = chat(url).with_structured_output(Review, method="json_schema")
    streamed = list(structured.stream(REVIEW))
    assert streamed[-1] == Review(name=REVIEW, sentiment="positive")
    assert fake.requests[-1]["stream"] is True


def test_enum_defaults_to_its_first_value(served: tuple[FakeOpenAI, str]) -> None:
    _, url = served
    structured = chat(url).with_structured_output(Review, method="json_schema")
    assert structured.invoke("meh") == Review(name="meh", sentiment="positive")
    assert cast(Review, structured.invoke("rather NEGATIVE!")).sentiment == "negative"
    assert cast(Review, structured.invoke("unpositive, neutral")).sentiment == "neutral"


@pytest.mark.filterwarnings(STREAMED_PARSE_WARNING)
@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
def test_badjson_model_breaks_structured_output(
    served: tuple[FakeOpenAI, str], streamed: bool
) -> None:
    _, url = served
    structured = chat(url, model="badjson-x").with_structured_output(Review, method="json_schema")
    with pytest.raises(ValidationError):
        list(structured.stream(REVIEW)) if streamed else structured.invoke(REVIEW)
    assert chat(url, model="badjson-x").invoke("hi").content == "echo: hi"


def test_json_object_wraps_the_reply(served: tuple[FakeOpenAI, str]) -> None:
    _, url = served
    model = chat(url).bind(response_format={"type": "json_object"})
    assert json.loads(model.invoke("hi").text) == {"answer": "echo: hi"}


def test_overrides_replace_the_defaults() -> None:
    fake = FakeOpenAI(
        tool_arguments=lambda function, text: {"a": 1, "b": len(text)},
        tool_reply=lambda messages: f"{len(messages)} results",
        json_reply=lambda schema, text: {"name": "fixed", "sentiment": "neutral"},
    )
    with serve_in_thread(fake.app) as url:
        model = chat(url).bind_tools([multiply])
        asked = model.invoke("abc")
        assert asked.tool_calls[0]["args"] == {"a": 1, "b": 3}
        answer = model.invoke([HumanMessage("abc"), asked, multiply.invoke(asked.tool_calls[0])])
        assert answer.content == "1 results"
        structured = chat(url).with_structured_output(Review, method="json_schema")
        assert structured.invoke("x") == Review(name="fixed", sentiment="neutral")


def test_schema_instance_resolves_refs_unions_and_consts() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "pet"},
            "age": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "owner": {"$ref": "#/$defs/Owner"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "legacy": {"$ref": "#/definitions/Flag"},
        },
        "$defs": {"Owner": {"type": "object", "properties": {"size": {"type": "number"}}}},
        "definitions": {"Flag": {"type": "boolean"}},
    }
    assert schema_instance(schema, "cat aged 3.5") == {
        "kind": "pet", "age": 3, "owner": {"size": 3.5}, "tags": ["cat aged 3.5"],
        "legacy": False,
    }


def test_default_tool_arguments_take_numbers_in_order() -> None:
    function = {"name": "f", "parameters": {"type": "object", "properties": {
        "x": {"type": "integer"}, "y": {"type": "number"}, "z": {"type": "number"},
        "note": {"type": "string"}, "flag": {"type": "boolean"},
    }, "required": ["x"]}}
    assert default_tool_arguments(function, "move -2.5 then 4") == {
        "x": -2, "y": 4, "z": 0, "note": "move -2.5 then 4", "flag": False,
    }
