"""Reference handlers: what a team would write without promptserve.

A LangChain callback handler that calls the PromptLayer SDK's `log_request` at
`on_llm_end`, with the sync client (LangChain runs a sync handler in its thread pool) or the
async one (awaited in the callback, so the request waits for it). Both build the same
blueprints our tracer does, so the log bodies are alike; neither hands the id back.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from promptlayer import AsyncPromptLayer, PromptLayer

from promptserve.tracing import _blueprints as bp

__all__ = ["AsyncSDKHandler", "SyncSDKHandler"]

_TAGS = ["bench", "reference"]


class _Calls:
    """Start data of the chat calls in flight, by run id."""

    def __init__(self) -> None:
        self.started: dict[UUID, tuple[float, list[BaseMessage], dict[str, Any]]] = {}

    def start(self, run_id: UUID, messages: list[list[BaseMessage]], kwargs: Any) -> None:
        params = dict(kwargs.get("invocation_params") or {})
        self.started[run_id] = (time.time(), messages[0] if messages else [], params)

    def body(self, run_id: UUID, response: LLMResult) -> dict[str, Any] | None:
        found = self.started.pop(run_id, None)
        if found is None:
            return None
        started, messages, params = found
        tokens = bp.token_usage(response)
        return {
            "provider": "openai", "model": str(params.get("model_name") or "unknown"),
            "input": bp.chat_input(messages, params), "output": bp.chat_output(response),
            "request_start_time": started, "request_end_time": time.time(),
            "parameters": bp.parameters(params), "tags": _TAGS,
            "metadata": {"_langchain_run_id": str(run_id)},
            "input_tokens": tokens[0], "output_tokens": tokens[1],
            "function_name": "langchain.FakeChatModel",
        }


class SyncSDKHandler(BaseCallbackHandler):
    """`PromptLayer.log_request` (sync) at the end of every chat call."""

    def __init__(self, client: PromptLayer) -> None:
        self._client = client
        self._calls = _Calls()

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *,
        run_id: UUID, **kwargs: Any,
    ) -> None:
        """Remember the call's input."""
        self._calls.start(run_id, messages, kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Log the call."""
        body = self._calls.body(run_id, response)
        if body is not None:
            self._client.log_request(**body)


class AsyncSDKHandler(AsyncCallbackHandler):
    """`AsyncPromptLayer.log_request`, awaited at the end of every chat call."""

    def __init__(self, client: AsyncPromptLayer) -> None:
        self._client = client
        self._calls = _Calls()

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *,
        run_id: UUID, **kwargs: Any,
    ) -> None:
        """Remember the call's input."""
        self._calls.start(run_id, messages, kwargs)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Log the call."""
        body = self._calls.body(run_id, response)
        if body is not None:
            await self._client.log_request(**body)
