"""A tiny OpenAI-compatible server for tests: chat and completions, plain and streamed.

Behaviour is chosen per request by the model name and the request body:
- any normal name: answer `reply(last user text)` (default `"echo: <text>"`);
- `fail-<status>` (e.g. `fail-500`, `fail-429`, `fail-401`): answer that status with an
  OpenAI-style error body;
- chat with `tools` (and `tool_choice` not `"none"`) whose last message is not a tool result:
  answer one call (`finish_reason: "tool_calls"`, ids `call_<n>`) to the tool `tool_choice`
  names, else the first tool, with arguments from `tool_arguments(function, last user text)`
  (default: numbers of the text fill number/integer parameters in order, see
  `default_tool_arguments`);
- chat whose last messages are tool results: answer `tool_reply(those messages)` (default
  `"result: <content of the last one>"`);
- `response_format` `json_schema`: answer `json.dumps(json_reply(schema, last user text))`
  (default: an instance built from the schema, see `schema_instance`); a `badjson-<name>`
  model answers `{"unexpected": true}` instead, valid JSON that fits no schema;
- `response_format` `json_object`: answer `{"answer": <reply text>}`.
Streams follow OpenAI's chunk format, tool-call deltas included; `stream_options.include_usage`
adds the usage chunk. Token usage is deterministic: whitespace-separated words (see
`count_tokens`), a tool call counting its arguments JSON as the completion.
Every received JSON body is appended to `FakeOpenAI.requests`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "FakeOpenAI",
    "count_tokens",
    "default_reply",
    "default_tool_arguments",
    "default_tool_reply",
    "message_text",
    "schema_instance",
]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Past this nesting depth instances leave out optional properties and array items, so that
# recursive schemas (a tree of nodes) still give a finite instance.
_MAX_DEPTH = 8


def count_tokens(text: str) -> int:
    """Deterministic "token" count: whitespace-separated words."""
    return len(text.split())


def default_reply(last_user_text: str) -> str:
    """The default answer: echo the last user message."""
    return f"echo: {last_user_text}"


def default_tool_reply(tool_messages: list[dict[str, Any]]) -> str:
    """The default answer after tool results: the last result's content."""
    return f"result: {message_text(tool_messages[-1].get('content'))}"


def message_text(content: Any) -> str:
    """Text of an OpenAI message `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return message_text(users[-1].get("content")) if users else ""


def _trailing_tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The tool results that answer the assistant's latest tool calls.
    run = list(itertools.takewhile(lambda m: m.get("role") == "tool", reversed(messages)))
    return run[::-1]


def _numbers(text: str) -> list[int | float]:
    return [float(n) if "." in n else int(n) for n in _NUMBER.findall(text)]


def _number(value: int | float, kind: str) -> int | float:
    return int(value) if kind == "integer" else value


def _chunks(text: str) -> list[str]:
    # Split into word-ish pieces that concatenate back to exactly `text`.
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _lookup(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    # Only local references (`#/$defs/...`, `#/definitions/...`) occur in tool and response
    # schemas; a JSON pointer walk resolves them.
    if not ref.startswith("#/"):
        raise ValueError(f"unsupported $ref {ref!r}")
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The concrete schema behind `$ref`s and `anyOf`/`oneOf` (the first non-null option)."""
    while True:
        if "$ref" in schema:
            schema = _lookup(schema["$ref"], root)
        elif options := schema.get("anyOf") or schema.get("oneOf"):
            schema = next((o for o in options if o.get("type") != "null"), options[0])
        else:
            return schema


def _schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return kind


def _pick_enum(values: list[Any], text: str) -> Any:
    # The first value the user says as a word, so tests can steer a classification.
    lowered = text.lower()
    for value in values:
        if isinstance(value, str) and re.search(
            rf"(?<!\w){re.escape(value.lower())}(?!\w)", lowered
        ):
            return value
    return values[0]


def schema_instance(
    schema: dict[str, Any], text: str, root: dict[str, Any] | None = None, depth: int = 0
) -> Any:
    """A deterministic instance of JSON schema `schema`, built from the user's `text`.

    Objects get every property, strings `text` (or the first `enum` value `text` mentions,
    else the first), numbers the first number in `text` (else 0), booleans false, arrays one
    item; `$ref`, `anyOf`/`oneOf` and `const` are honoured.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return _pick_enum(schema["enum"], text)
    kind = _schema_type(schema)
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        names = [n for n in properties if depth < _MAX_DEPTH or n in required]
        return {n: schema_instance(properties[n], text, root, depth + 1) for n in names}
    if kind == "array":
        item = schema.get("items") or {}
        return [schema_instance(item, text, root, depth + 1)] if depth < _MAX_DEPTH else []
    if kind in ("number", "integer"):
        return _number(next(iter(_numbers(text)), 0), kind)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text


def default_tool_arguments(function: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments for tool `function` (an OpenAI function definition) from the user's `text`.

    Number and integer parameters take the numbers of `text` in order (0 once they run out),
    so "what is 6 times 7" calls `multiply(a, b)` with 6 and 7; other parameters get
    `schema_instance` values (strings `text`, booleans false).
    """
    parameters: dict[str, Any] = function.get("parameters") or {}
    numbers: Iterator[int | float] = iter(_numbers(text))
    arguments: dict[str, Any] = {}
    for name, prop in (parameters.get("properties") or {}).items():
        prop = _resolve(prop, parameters)
        kind = _schema_type(prop)
        if kind in ("number", "integer") and "enum" not in prop and "const" not in prop:
            arguments[name] = _number(next(numbers, 0), kind)
        else:
            arguments[name] = schema_instance(prop, text, parameters, depth=1)
    return arguments


def _error(status: int, message: str) -> Response:
    body = {"error": {"message": message, "type": "fake", "code": None}}
    return JSONResponse(body, status_code=status)


@dataclass(frozen=True)
class _Answer:
    """What the fake answers a chat request: text, or one tool call."""

    text: str = ""
    tool_call: dict[str, Any] | None = None

    @property
    def finish_reason(self) -> str:
        return "stop" if self.tool_call is None else "tool_calls"

    @property
    def completion(self) -> str:
        # Usage counts a tool call's arguments as the generated text.
        return self.text if self.tool_call is None else self.tool_call["function"]["arguments"]

    def message(self) -> dict[str, Any]:
        if self.tool_call is None:
            return {"role": "assistant", "content": self.text}
        return {"role": "assistant", "content": None, "tool_calls": [self.tool_call]}

    def deltas(self) -> list[dict[str, Any]]:
        """Stream deltas in OpenAI's order: the role, then content or the call in pieces."""
        if self.tool_call is None:
            return [{"role": "assistant", "content": ""},
                    *({"content": piece} for piece in _chunks(self.text))]
        call = self.tool_call
        head = {"index": 0, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}
        pieces = [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                  for piece in _chunks(call["function"]["arguments"])]
        return [{"role": "assistant", "content": None}, {"tool_calls": [head]}, *pieces]


@dataclass
class FakeOpenAI:
    """The fake server's state; serve `.app` with `serve_in_thread`."""

    reply: Callable[[str], str] = default_reply
    # Seconds between streamed chunks (a slow model, for stream-duration limits).
    stream_delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    # (tool's function definition, last user text) -> arguments; None: default_tool_arguments.
    tool_arguments: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    # The trailing tool messages -> the answer that follows them.
    tool_reply: Callable[[list[dict[str, Any]]], str] = default_tool_reply
    # (JSON schema, last user text) -> instance to answer; None: schema_instance.
    json_reply: Callable[[dict[str, Any], str], Any] | None = None
    app: Starlette = field(init=False)
    _call_ids: Iterator[int] = field(init=False, repr=False,
                                     default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def chat_usage(self, messages: list[dict[str, Any]], reply: str) -> dict[str, int]:
        """Usage the server reports for a chat request."""
        prompt = sum(count_tokens(message_text(m.get("content"))) for m in messages)
        completion = count_tokens(reply)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    @staticmethod
    def _failure(model: str) -> Response | None:
        if not model.startswith("fail-"):
            return None
        status = int(model.removeprefix("fail-"))
        return _error(status, f"fake failure {status}")

    @staticmethod
    async def _models(request: Request) -> Response:
        # What readiness probes call.
        return JSONResponse(
            {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "tests"}]}
        )

    def _tool_call(self, function: dict[str, Any], user_text: str) -> dict[str, Any]:
        make_arguments = self.tool_arguments or default_tool_arguments
        return {
            "id": f"call_{next(self._call_ids)}",
            "type": "function",
            "function": {
                "name": function.get("name", ""),
                "arguments": json.dumps(make_arguments(function, user_text)),
            },
        }

    def _content(self, body: dict[str, Any], text: Callable[[], str], user_text: str) -> str:
        # `text` is lazy: a JSON-schema answer never consults `reply` or `tool_reply`.
        response_format = body.get("response_format") or {}
        kind = response_format.get("type")
        if kind == "json_schema":
            if str(body.get("model", "")).startswith("badjson-"):
                return json.dumps({"unexpected": True})
            schema = (response_format.get("json_schema") or {}).get("schema") or {}
            return json.dumps((self.json_reply or schema_instance)(schema, user_text))
        if kind == "json_object":
            return json.dumps({"answer": text()})
        return text()

    def _answer(self, body: dict[str, Any]) -> _Answer | Response:
        messages: list[dict[str, Any]] = body.get("messages", [])
        user_text = _last_user_text(messages)
        tool_results = _trailing_tool_messages(messages)
        tools = [t.get("function") or {} for t in body.get("tools") or ()
                 if t.get("type") == "function"]
        tool_choice = body.get("tool_choice")
        if tools and not tool_results and tool_choice != "none":
            function = tools[0]
            if isinstance(tool_choice, dict):
                name = (tool_choice.get("function") or {}).get("name")
                function = next((t for t in tools if t.get("name") == name), {})
                if not function:
                    return _error(400, f"tool_choice names an unknown tool {name!r}")
            return _Answer(tool_call=self._tool_call(function, user_text))

        def text() -> str:
            return self.tool_reply(tool_results) if tool_results else self.reply(user_text)

        return _Answer(text=self._content(body, text, user_text))

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        model = str(body.get("model", ""))
        if (failure := self._failure(model)) is not None:
            return failure
        answer = self._answer(body)
        if isinstance(answer, Response):
            return answer
        usage = self.chat_usage(body.get("messages", []), answer.completion)
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._chat_stream(model, answer, usage if include_usage else None, created),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": answer.message(),
                        "finish_reason": answer.finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
        )

    async def _chat_stream(
        self, model: str, answer: _Answer, usage: dict[str, int] | None, created: int
    ) -> AsyncIterator[str]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                "model": model}
        for delta in answer.deltas():
            if self.stream_delay:
                await asyncio.sleep(self.stream_delay)
            choice = {"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}
            yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        last = {"index": 0, "delta": {}, "finish_reason": answer.finish_reason, "logprobs": None}
        yield f"data: {json.dumps({**base, 'choices': [last]})}\n\n"
        if usage is not None:
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        model = str(body.get("model", ""))
        if (failure := self._failure(model)) is not None:
            return failure
        prompts = body.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        replies = [self.reply(p) for p in prompts]
        prompt_tokens = sum(count_tokens(p) for p in prompts)
        completion_tokens = sum(count_tokens(r) for r in replies)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": model}
        if body.get("stream"):
            return StreamingResponse(self._completion_stream(base, replies),
                                     media_type="text/event-stream")
        choices = [
            {"text": r, "index": i, "logprobs": None, "finish_reason": "stop"}
            for i, r in enumerate(replies)
        ]
        return JSONResponse({**base, "choices": choices, "usage": usage})

    @staticmethod
    async def _completion_stream(base: dict[str, Any], replies: list[str]) -> AsyncIterator[str]:
        for index, reply in enumerate(replies):
            for piece in _chunks(reply):
                choice = {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
                yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
            choice = {"text": "", "index": index, "logprobs": None, "finish_reason": "stop"}
            yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        yield "data: [DONE]\n\n"
