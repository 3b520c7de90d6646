"""The runnable a route serves: the chain, each run opened in the request's trace.

LangServe's config modifier puts the request's `RequestTrace` into `configurable`; every
entry point LangServe calls (ainvoke, abatch, astream, which stream_log streams through, and
astream_events) opens each run here: the run's prompt versions are pinned (a label moved
mid-run does not change the run) and the run becomes a root of the request's tracer, whose
handler takes the run's LLM calls. The run id comes from the config (LangServe sets it).

It also removes the `AsyncEventAggregatorCallback` LangServe adds to every invoke, batch and
stream run: LangServe reads what it gathers only for routes added with
`include_callback_events=True`, which promptserve never sets (stream never reads it at
all), and as a non-inline handler it costs a task per callback event, ~10 per run: 13% of
stock LangServe's CPU per invoke (bench: `inprocess`).

A chain with a prompt that follows a release label also declares the `configurable` fields a
split label routes by (`release_key`, `release_metadata`): LangServe keeps only declared
fields of a request's config, and validates them. The pins are taken with the run's
`configurable`, so its arm is chosen once, when the run starts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_config_list
from langchain_core.runnables.graph import Graph
from langchain_core.runnables.utils import ConfigurableFieldSpec
from langserve.callbacks import AsyncEventAggregatorCallback
from pydantic import BaseModel

from promptserve.prompts import INSTALLED, PINS_KEY, PromptPins, PromptStore, RegistryPrompt
from promptserve.prompts._caller import RELEASE_SPECS
from promptserve.server._trace import TRACE_CONFIG_KEY, RequestTrace

__all__ = ["TracedRunnable"]


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


def _without_event_aggregator(config: RunnableConfig) -> RunnableConfig:
    """`config` without LangServe's unread event aggregator (see the module's docstring)."""
    callbacks = config.get("callbacks")
    # LangServe puts it in a list (invoke, batch, stream); managers come from elsewhere.
    if not isinstance(callbacks, list):
        return config
    kept = [c for c in callbacks if not isinstance(c, AsyncEventAggregatorCallback)]
    return config if len(kept) == len(callbacks) else {**config, "callbacks": kept}


def _nothing(error: BaseException | None = None) -> None:
    return None


Close = Callable[[BaseException | None], None]


class TracedRunnable(Runnable[Any, Any]):
    """Serves `bound`, each run pinned to its prompt versions and traced as one root.

    A plain Runnable (not a RunnableBinding: its copies, made by `with_config` and
    `with_types`, would drop the store) that hands LangServe the bound chain's types and
    graph, and opens every run it is given.
    """

    def __init__(
        self,
        bound: Runnable[Any, Any],
        *,
        prompts: Sequence[RegistryPrompt] = (),
        store: PromptStore | None = None,
    ) -> None:
        """Serve `bound`; pin `prompts` from `store` (else from what `install` gave them)."""
        self.bound = bound
        self.prompts = tuple(prompts)
        self.store = store
        self.name = bound.get_name()

    # -- what LangServe reads --------------------------------------------------------------

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        """The bound chain's."""
        return self.bound.InputType

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        """The bound chain's."""
        return self.bound.OutputType

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """The bound chain's input schema, its registry prompts typed by `store`'s versions
        (LangServe validates every request with it, so a new version's variables count)."""
        if self.store is None:
            return cast("type[BaseModel]", self.bound.get_input_schema(config))
        with self.store.typing():
            return cast("type[BaseModel]", self.bound.get_input_schema(config))

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """The bound chain's."""
        return cast("type[BaseModel]", self.bound.get_output_schema(config))

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """The bound chain's, plus the release fields if a prompt follows a label."""
        specs = self.bound.config_specs
        if self.store is None or not any(p.label for p in self.prompts):
            return specs
        taken = {spec.id for spec in specs}
        return [*specs, *(spec for spec in RELEASE_SPECS if spec.id not in taken)]

    def get_graph(self, config: RunnableConfig | None = None) -> Graph:
        """The bound chain's (the playground draws it)."""
        return self.bound.get_graph(config)

    # -- runs --------------------------------------------------------------------------------

    def _open(
        self, input: Any, config: RunnableConfig | None
    ) -> tuple[RunnableConfig, Close]:
        """The run's config (pins, root handler) and what closes the run."""
        config = _without_event_aggregator(config or {})
        configurable = config.get("configurable") or {}
        trace = configurable.get(TRACE_CONFIG_KEY)
        if not isinstance(trace, RequestTrace):  # a client cannot smuggle one in
            return config, _nothing
        # LangServe gives the run id as a string, and LangChain's event stream looks the root
        # up by that very value: the config keeps it as given.
        given = config.get("run_id") or uuid.uuid4()
        run_id = uuid.UUID(str(given))
        store = self.store
        pins = (store.pins(self.prompts, configurable) if store is not None
                else PromptPins(INSTALLED))
        trace.runs[run_id] = pins
        rest = {k: v for k, v in configurable.items() if k != TRACE_CONFIG_KEY}
        opened: RunnableConfig = {
            **config, "run_id": given, "configurable": {**rest, PINS_KEY: pins}
        }
        tracer = trace.tracer
        if tracer is None:
            return opened, _nothing
        opened = _with_handler(opened, tracer.open_root(run_id, input))

        def close(error: BaseException | None = None) -> None:
            if error is not None and trace.error is None:
                trace.error = error
            tracer.close_root(run_id)

        return opened, close

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Run `input` as one traced root."""
        config, close = self._open(input, config)
        try:
            result = self.bound.invoke(input, config, **kwargs)
        except BaseException as error:
            close(error)
            raise
        close(None)
        return result

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """Run `input` as one traced root."""
        config, close = self._open(input, config)
        try:
            result = await self.bound.ainvoke(input, config, **kwargs)
        except BaseException as error:
            close(error)
            raise
        close(None)
        return result

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Stream `input` as one traced root (stream_log and stream_events stream through
        here: Runnable's own `astream_log` and `astream_events` call `astream`)."""
        config, close = self._open(input, config)
        try:
            async for chunk in self.bound.astream(input, config, **kwargs):
                yield chunk
        except BaseException as error:
            close(error)
            raise
        close(None)

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Run each input as its own traced root."""
        configs = get_config_list(config, len(inputs))
        opened = [self._open(i, c) for i, c in zip(inputs, configs, strict=True)]
        error: BaseException | None = None
        try:
            return await self.bound.abatch(inputs, [c for c, _ in opened],
                                           return_exceptions=return_exceptions, **kwargs)
        except BaseException as raised:
            error = raised
            raise
        finally:
            for _, close in opened:
                close(error)
