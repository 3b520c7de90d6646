"""A chain whose implementation can be swapped while it is being served.

LangServe registers a runnable once; a registry refresh must change what that route
runs without touching the routes. `LiveChain` is a `RunnableBinding` whose `bound` is
replaced atomically (one attribute assignment); a run that already started keeps the
chain it started with.

It also attaches the per-request tracer. LangServe's `per_req_config_modifier` may only
set the keys in `config_keys` for batch requests (batch drops every other key after the
modifier runs), so the modifier puts the tracer in `configurable` and the binding moves it
into `callbacks`. invoke, batch, stream and stream_log (which streams through `astream`)
open each run as a root of the tracer (`PromptLayerTracer.open_root`): the run id comes
from the config (LangServe sets it) and the input is at hand, so the tracer need not
follow every chain event to learn them. Other entry points (stream_events, sync calls)
give the chain the tracer itself, which follows the chain events as any LangChain user's
handler would.

It also removes the `AsyncEventAggregatorCallback` LangServe adds to every invoke, batch and
stream run: LangServe reads what it gathers only for routes added with
`include_callback_events=True`, which the service never sets (stream never reads it at all),
and as a non-inline handler it costs a task per callback event, ~10 per run: 13% of stock
LangServe's CPU per invoke (in-process, BENCHMARKS.md §2, "Update 2026-12-03").
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import get_config_list, merge_configs
from langserve.callbacks import AsyncEventAggregatorCallback

from app.tracing import PromptLayerTracer

__all__ = ["TRACER_CONFIG_KEY", "LiveChain"]

# Double underscore: LangChain does not copy such configurable keys into run metadata.
TRACER_CONFIG_KEY = "__promptserve_tracer"


def _with_handler(config: RunnableConfig, handler: BaseCallbackHandler) -> RunnableConfig:
    """`config` with `handler` added to its callbacks."""
    callbacks = config.get("callbacks")
    if callbacks is None:
        merged: Any = [handler]
    elif isinstance(callbacks, list):
        merged = [*callbacks, handler]
    else:  # a callback manager (astream_log and astream_events pass their own)
        merged = callbacks.copy()
        merged.add_handler(handler, inherit=True)
    return {**config, "callbacks": merged}


def _with_tracer(config: RunnableConfig) -> RunnableConfig:
    """`config` with the tracer its `configurable` carries added to its callbacks."""
    tracer = (config.get("configurable") or {}).get(TRACER_CONFIG_KEY)
    if not isinstance(tracer, BaseCallbackHandler):  # a client cannot smuggle one in
        return config
    return _with_handler(config, tracer)


def _without_event_aggregator(config: RunnableConfig) -> RunnableConfig:
    """`config` without LangServe's unread event aggregator (see the module's docstring)."""
    callbacks = config.get("callbacks")
    # LangServe puts it in a list (invoke, batch, stream); managers come from elsewhere.
    if not isinstance(callbacks, list):
        return config
    kept = [c for c in callbacks if not isinstance(c, AsyncEventAggregatorCallback)]
    return config if len(kept) == len(callbacks) else {**config, "callbacks": kept}


def _nothing() -> None:
    return None


def _open_root(
    input: Any, config: RunnableConfig | None
) -> tuple[RunnableConfig, Callable[[], None]]:
    """The run's config with its root's handler, and what closes the root."""
    config = _without_event_aggregator(config or {})
    configurable = config.get("configurable") or {}
    tracer = configurable.get(TRACER_CONFIG_KEY)
    if not isinstance(tracer, PromptLayerTracer):
        return config, _nothing
    run_id = config.get("run_id") or uuid.uuid4()
    handler = tracer.open_root(run_id, input)
    # Without the tracer key, _merge_configs does not add the tracer a second time.
    rest = {k: v for k, v in configurable.items() if k != TRACER_CONFIG_KEY}
    opened = _with_handler({**config, "run_id": run_id, "configurable": rest}, handler)
    return opened, lambda: tracer.close_root(run_id)


class LiveChain(RunnableBinding[Any, Any]):
    """Serves the chain it currently holds; `swap` installs a new one."""

    def swap(self, chain: Runnable[Any, Any]) -> None:
        """Serve `chain` from the next run on."""
        self.bound = chain

    def _merge_configs(self, *configs: RunnableConfig | None) -> RunnableConfig:
        # RunnableBinding's own merge runs merge_configs twice (four ensure_config passes,
        # ~2% of a request's CPU); the bound chain normalises the config anyway, so a lone
        # config only gets its tracer.
        if len(configs) == 1 and not self.config:
            return _with_tracer(configs[0] or {})
        return _with_tracer(merge_configs(self.config, *configs))

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """Run `input` as one traced root."""
        config, close = _open_root(input, config)
        try:
            return await super().ainvoke(input, config, **kwargs)
        finally:
            close()

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Stream `input` as one traced root (stream_log streams through here too)."""
        config, close = _open_root(input, config)
        try:
            async for chunk in super().astream(input, config, **kwargs):
                yield chunk
        finally:
            close()

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Run each input as its own traced root."""
        opened = [_open_root(i, c) for i, c in zip(inputs, get_config_list(config, len(inputs)),
                                                   strict=True)]
        try:
            return await super().abatch(inputs, [c for c, _ in opened],
                                        return_exceptions=return_exceptions, **kwargs)
        finally:
            for _, close in opened:
                close()
