"""`PromptLayerOpenAI` and `PromptLayerChatOpenAI`: langchain-openai's `OpenAI` and
`ChatOpenAI` that log every call to PromptLayer, as langchain-community's did.

    llm = PromptLayerOpenAI(pl_tags=["langchain-requests"], return_pl_id=True)
    result = llm.generate(["hello world"])
    result.generations[0][0].generation_info["pl_request_id"]

Each model carries a `PromptLayerCallbackHandler`; with `return_pl_id`, `generate` and
`agenerate` wait for each call's id (the seed documents' behaviour; everything else never
waits) and put it in `generation_info["pl_request_id"]`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.outputs import LLMResult
from langchain_openai import ChatOpenAI, OpenAI
from pydantic import Field, PrivateAttr, model_validator

from promptserve.integration._handler import PromptLayerCallbackHandler

__all__ = ["PromptLayerChatOpenAI", "PromptLayerOpenAI"]

# How long `return_pl_id` waits for an id before leaving it None.
_ID_WAIT_SECONDS = 30.0


class _PromptLayerLogged:
    """What both models share: the handler in their callbacks, ids after `generate`."""

    pl_tags: list[str] | None
    return_pl_id: bool
    callbacks: Any
    _handler: PromptLayerCallbackHandler | None

    def _attach_handler(self) -> None:
        handler = PromptLayerCallbackHandler(pl_tags=self.pl_tags)
        handler.keep_request_ids = self.return_pl_id
        self._handler = handler
        callbacks = self.callbacks
        if callbacks is None:
            self.callbacks = [handler]
        elif isinstance(callbacks, list):
            self.callbacks = [*callbacks, handler]
        else:  # a callback manager
            callbacks.add_handler(handler, inherit=True)

    def generate(self, *args: Any, **kwargs: Any) -> LLMResult:
        """The model's `generate`; with `return_pl_id`, each generation names its id."""
        return self._with_ids(super().generate(*args, **kwargs))  # type: ignore[misc]

    async def agenerate(self, *args: Any, **kwargs: Any) -> LLMResult:
        """The model's `agenerate`; with `return_pl_id`, each generation names its id."""
        result = await super().agenerate(*args, **kwargs)  # type: ignore[misc]
        return await self._awith_ids(result)

    def _with_ids(self, result: LLMResult) -> LLMResult:
        if not self.return_pl_id or self._handler is None:
            return result
        for generations, run in zip(result.generations, result.run or (), strict=False):
            request_id = self._handler.request_id_of(run.run_id, _ID_WAIT_SECONDS)
            _put_id(generations, request_id)
        return result

    async def _awith_ids(self, result: LLMResult) -> LLMResult:
        if not self.return_pl_id or self._handler is None:
            return result
        for generations, run in zip(result.generations, result.run or (), strict=False):
            request_id = await self._handler.arequest_id_of(run.run_id, _ID_WAIT_SECONDS)
            _put_id(generations, request_id)
        return result


def _put_id(generations: list[Any], request_id: int | None) -> None:
    for generation in generations:
        generation.generation_info = {**(generation.generation_info or {}),
                                      "pl_request_id": request_id}


class PromptLayerOpenAI(_PromptLayerLogged, OpenAI):
    """langchain-openai's completion `OpenAI`, every call logged to PromptLayer."""

    pl_tags: list[str] | None = Field(default=None)
    return_pl_id: bool = False
    _handler: PromptLayerCallbackHandler | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _log_calls(self) -> PromptLayerOpenAI:
        self._attach_handler()
        return self



class PromptLayerChatOpenAI(_PromptLayerLogged, ChatOpenAI):
    """langchain-openai's `ChatOpenAI`, every call logged to PromptLayer."""

    pl_tags: list[str] | None = Field(default=None)
    return_pl_id: bool = False
    _handler: PromptLayerCallbackHandler | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _log_calls(self) -> PromptLayerChatOpenAI:
        self._attach_handler()
        return self

