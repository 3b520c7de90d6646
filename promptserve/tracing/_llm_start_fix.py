"""Mends langchain-core's `AsyncCallbackManager.on_llm_start` for inline handlers.

Upstream (every release up to 1.8.4, the newest on the index) sends a completion LLM's
`on_llm_start` either to the inline handlers or, when there are none, to the others: with
one inline handler present, every non-inline handler misses the event. Chat models are
not affected (`on_chat_model_start` sends to both). Our tracer is inline (it never awaits,
and inline dispatch costs no task per event), so without this fix LangServe's
stream_events/stream_log handlers would lose the start of every completion LLM run.

The fix wraps the method: after upstream has run, the skipped non-inline handlers get the
same event, with the same run ids, exactly as upstream's own non-inline branch would send
it. It applies only to the versions known to have the bug; a test fails the day an
upgrade makes it double the event or leaves it missing.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import langchain_core
from langchain_core.callbacks.manager import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    ahandle_event,
)

__all__ = ["apply", "is_needed"]

# The newest release checked to still skip the non-inline handlers.
_LAST_BUGGY = (1, 8, 4)
_MARK = "__promptserve_llm_start_fix__"

OnLLMStart = Callable[..., Awaitable[list[AsyncCallbackManagerForLLMRun]]]


def is_needed(version: str = langchain_core.__version__) -> bool:
    """Whether this langchain-core release has the bug."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return match is not None and tuple(int(part) for part in match.groups()) <= _LAST_BUGGY


def apply() -> None:
    """Install the wrapper once (idempotent); a no-op on fixed releases."""
    original = AsyncCallbackManager.on_llm_start
    if not is_needed() or getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def on_llm_start(
        self: AsyncCallbackManager,
        serialized: dict[str, Any],
        prompts: list[str],
        run_id: UUID | None = None,
        **kwargs: Any,
    ) -> list[AsyncCallbackManagerForLLMRun]:
        managers = await original(self, serialized, prompts, run_id, **kwargs)
        skipped = [h for h in self.handlers if not h.run_inline]
        if skipped and len(skipped) < len(self.handlers):
            await asyncio.gather(*(
                ahandle_event(
                    skipped, "on_llm_start", "ignore_llm", serialized, [prompt],
                    run_id=manager.run_id, parent_run_id=self.parent_run_id,
                    tags=self.tags, metadata=self.metadata, **kwargs,
                )
                for prompt, manager in zip(prompts, managers, strict=True)
            ))
        return managers

    setattr(on_llm_start, _MARK, True)
    AsyncCallbackManager.on_llm_start = on_llm_start  # type: ignore[method-assign]
