"""The mend of langchain-core's on_llm_start for inline handlers (tracing._llm_start_fix)."""

from __future__ import annotations

from typing import Any

import langchain_core
import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from promptserve.tracing import (
    PromptLayerTracer,  # noqa: F401  (importing it applies the fix)
    _llm_start_fix,
)


class Recorder(AsyncCallbackHandler):
    """Counts the LLM starts and ends it is sent."""

    def __init__(self, *, inline: bool) -> None:
        self.run_inline = inline
        self.starts: list[Any] = []
        self.ends = 0

    async def on_llm_start(self, serialized: dict[str, Any], prompts: list[str],
                           **kwargs: Any) -> None:
        self.starts.append((prompts, kwargs["run_id"], kwargs["parent_run_id"]))

    async def on_chat_model_start(self, serialized: dict[str, Any], messages: Any,
                                  **kwargs: Any) -> None:
        self.starts.append((messages, kwargs["run_id"], kwargs["parent_run_id"]))

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


@pytest.mark.parametrize("model", [FakeListLLM(responses=["a"]),
                                   FakeListChatModel(responses=["a"])],
                         ids=["completion", "chat"])
async def test_every_handler_gets_each_llm_start_exactly_once(model: Any) -> None:
    inline, other = Recorder(inline=True), Recorder(inline=False)
    await model.ainvoke("q", config={"callbacks": [inline, other]})
    assert len(inline.starts) == len(other.starts) == 1
    assert inline.starts == other.starts  # same prompt, run id and parent
    assert inline.ends == other.ends == 1


async def test_a_batch_of_prompts_reaches_the_other_handlers_with_their_run_ids() -> None:
    inline, other = Recorder(inline=True), Recorder(inline=False)
    await FakeListLLM(responses=["a", "b"]).abatch(["q1", "q2"],
                                                    config={"callbacks": [inline, other]})
    assert sorted(map(str, inline.starts)) == sorted(map(str, other.starts))
    assert len(other.starts) == 2


def test_applies_to_the_releases_known_to_have_the_bug() -> None:
    assert _llm_start_fix.is_needed(langchain_core.__version__)
    assert _llm_start_fix.is_needed("1.8.4")
    assert not _llm_start_fix.is_needed("1.8.5")
    assert not _llm_start_fix.is_needed("2.0.0rc1")
    assert not _llm_start_fix.is_needed("nonsense")


def test_applying_twice_wraps_once() -> None:
    from langchain_core.callbacks.manager import AsyncCallbackManager

    before = AsyncCallbackManager.on_llm_start
    _llm_start_fix.apply()
    assert AsyncCallbackManager.on_llm_start is before
