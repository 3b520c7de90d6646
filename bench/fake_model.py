"""The one in-process chat model every benchmarked variant serves, so only our layer differs.

It answers a fixed reply at once (no sleeps: the benchmarks measure serving overhead, not a
model), streams it in several chunks, and reports `usage_metadata` like ChatOpenAI with
`stream_usage=True` does. Async paths are implemented natively: BaseChatModel's defaults
would run the sync ones in a thread pool, a cost no real async client has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

__all__ = ["REPLY", "FakeChatModel", "fake_chat_model"]

REPLY = "Toast that loves you back: warm, golden and ready before your coffee is."
_CHUNKS = 6


def _usage() -> UsageMetadata:
    return {"input_tokens": 31, "output_tokens": 15, "total_tokens": 46}


def _pieces(text: str, n: int) -> list[str]:
    step = -(-len(text) // n)
    return [text[i : i + step] for i in range(0, len(text), step)]


class FakeChatModel(BaseChatModel):
    """A fixed reply, in `_CHUNKS` chunks when streamed, with token usage."""

    reply: str = REPLY
    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any,
    ) -> FakeChatModel:
        """Itself: the fake never calls a tool, but a template with tools (the catalog's
        /tools) must still build for the service to start."""
        return self

    def _result(self) -> ChatResult:
        message = AIMessage(content=self.reply, usage_metadata=_usage())
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self) -> Iterator[ChatGenerationChunk]:
        pieces = _pieces(self.reply, _CHUNKS)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk = AIMessageChunk(content=piece, usage_metadata=_usage() if last else None)
            yield ChatGenerationChunk(message=chunk)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        return self._result()

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        return self._result()

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks():
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks():
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def fake_chat_model(template_name: str, model_metadata: Mapping[str, Any]) -> FakeChatModel:
    """A `ChatModelFactory` for `create_app` (and a `ModelFactory` for `build_version`): the
    same fake for every template."""
    return FakeChatModel()
