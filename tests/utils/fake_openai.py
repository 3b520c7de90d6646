"""A tiny OpenAI-compatible server for tests: chat and completions, plain and streamed.

Behaviour is chosen per request by the model name:
- any normal name: answer `reply(last user text)` (default `"echo: <text>"`);
- `fail-<status>` (e.g. `fail-500`, `fail-429`, `fail-401`): answer that status with an
  OpenAI-style error body.
Token usage is deterministic: whitespace-separated words (see `count_tokens`).
Every received JSON body is appended to `FakeOpenAI.requests`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["FakeOpenAI", "count_tokens", "default_reply", "message_text"]


def count_tokens(text: str) -> int:
    """Deterministic "token" count: whitespace-separated words."""
    return len(text.split())


def default_reply(last_user_text: str) -> str:
    """The default answer: echo the last user message."""
    return f"echo: {last_user_text}"


def message_text(content: Any) -> str:
    """Text of an OpenAI message `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _chunks(text: str) -> list[str]:
    # Split into word-ish pieces that concatenate back to exactly `text`.
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


@dataclass
class FakeOpenAI:
    """The fake server's state; serve `.app` with `serve_in_thread`."""

    reply: Callable[[str], str] = default_reply
    # Seconds between streamed chunks (a slow model, for stream-duration limits).
    stream_delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    app: Starlette = field(init=False)

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
        body = {"error": {"message": f"fake failure {status}", "type": "fake", "code": None}}
        return JSONResponse(body, status_code=status)

    @staticmethod
    async def _models(request: Request) -> Response:
        # What readiness probes call.
        return JSONResponse(
            {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "tests"}]}
        )

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        model = str(body.get("model", ""))
        if (failure := self._failure(model)) is not None:
            return failure
        messages = body.get("messages", [])
        users = [m for m in messages if m.get("role") == "user"]
        reply = self.reply(message_text(users[-1].get("content")) if users else "")
        usage = self.chat_usage(messages, reply)
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._chat_stream(model, reply, usage if include_usage else None, created),
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
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
        )

    async def _chat_stream(
        self,
        model: str, reply: str, usage: dict[str, int] | None, created: int
    ) -> AsyncIterator[str]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                "model": model}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": piece} for piece in _chunks(reply)]
        for delta in deltas:
            if self.stream_delay:
                await asyncio.sleep(self.stream_delay)
            choice = {"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}
            yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        last = {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
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
