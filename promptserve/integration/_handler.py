"""`PromptLayerCallbackHandler`: LangChain's community handler, working, for any program.

    chat = ChatOpenAI(callbacks=[PromptLayerCallbackHandler(pl_tags=["chatopenai"])])

It is the served tracer (`promptserve.tracing.PromptLayerTracer`: the same blueprints,
tokens, errors, prompt links and groups) over the process's background delivery
(`_background`), so a call never waits on the network, sync or async, and a script's
consecutive calls share a post (`_linger`). One handler may serve any number of calls: what
it keeps of a run goes when the run ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any, cast
from uuid import UUID

from promptserve.integration._background import BackgroundDelivery, default_delivery
from promptserve.tracing import LogDelivery, PromptLayerTracer

__all__ = ["PromptLayerCallbackHandler"]


class PromptLayerCallbackHandler(PromptLayerTracer):
    """Logs every LLM call it sees to PromptLayer, tagged `pl_tags`; `pl_id_callback` gets
    each request id once its log has landed (on a thread of its own, so it may block)."""

    def __init__(
        self,
        pl_tags: Sequence[str] | None = None,
        pl_id_callback: Callable[[int], Any] | None = None,
        *,
        delivery: BackgroundDelivery | None = None,
    ) -> None:
        """Deliver through `delivery` (default: the process's, from the environment)."""
        self.background = delivery if delivery is not None else default_delivery()
        # The tracer submits to the lingering delivery (it has every method the tracer
        # calls). The id callback is watched here, not by the tracer, which would hop to
        # the delivery loop once per log to do so.
        super().__init__(cast(LogDelivery, self.background.logs), tags=(), pl_tags=pl_tags)
        self._id_callback = pl_id_callback
        # LLM run id → its log's future, kept only for `request_id_of` (return_pl_id).
        self._by_run: dict[UUID, asyncio.Future[int | None]] = {}
        self.keep_request_ids = False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every log so far has landed (or is spooled) and every callback ran."""
        return self.background.flush(timeout)

    def request_id_of(self, llm_run_id: UUID, timeout: float = 30.0) -> int | None:
        """The request id of LLM run `llm_run_id`, waiting up to `timeout` s (sync code)."""
        future = self._by_run.pop(llm_run_id, None)
        if future is None:
            return None
        try:
            found: int | None = self.background.run(self.background.wait_for(future, timeout),
                                                    timeout=timeout + 1)
            return found
        except concurrent.futures.TimeoutError:
            return None

    async def arequest_id_of(self, llm_run_id: UUID, timeout: float = 30.0) -> int | None:
        """`request_id_of` for async code."""
        future = self._by_run.pop(llm_run_id, None)
        if future is None:
            return None
        waiting = asyncio.run_coroutine_threadsafe(self.background.wait_for(future, timeout),
                                                   self.background.loop)
        return await asyncio.wrap_future(waiting)

    def _submitted(self, run_id: UUID, future: asyncio.Future[int | None]) -> None:
        if self.keep_request_ids:
            self._by_run[run_id] = future
        if self._id_callback is not None:
            self.background.logs.watch(future, self._landed)

    def _landed(self, future: asyncio.Future[int | None]) -> None:
        # On the delivery loop; the callback itself runs on the callback thread.
        if self._id_callback is None or future.cancelled() or future.exception() is not None:
            return
        request_id = future.result()
        if request_id is not None:
            self.background.call_back(self._id_callback, request_id)

    def _root_ended(self, root_id: UUID) -> None:
        # Long-lived: the root's futures and finished group tasks go with it.
        self._requests.pop(root_id, None)
        self._group_tasks = [t for t in self._group_tasks if not t.done()]


def _now(coroutine: Any) -> None:
    """Run a coroutine that never awaits to its end, here, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a tracer callback awaited; it must not")


def _sync(name: str) -> Callable[..., None]:
    base = getattr(PromptLayerTracer, name)

    def callback(self: PromptLayerCallbackHandler, *args: Any, **kwargs: Any) -> None:
        _now(base(self, *args, **kwargs))

    callback.__name__ = callback.__qualname__ = name
    callback.__doc__ = base.__doc__
    return callback


# The tracer's callbacks never await, so they run as plain functions: LangChain then calls
# them directly from sync code (an async handler there costs a new event loop per event,
# bench: `handler`) and, being inline, directly from async code too.
for _event in ("on_chain_start", "on_chain_end", "on_chain_error", "on_tool_start",
               "on_tool_end", "on_tool_error", "on_retriever_start", "on_retriever_end",
               "on_retriever_error", "on_chat_model_start", "on_llm_start", "on_llm_end",
               "on_llm_error"):
    setattr(PromptLayerCallbackHandler, _event, _sync(_event))
