"""A chain whose implementation can be swapped while it is being served.

LangServe registers a runnable once; a registry refresh must change what that route
runs without touching the routes. `LiveChain` is a `RunnableBinding` whose `bound` is
replaced atomically (one attribute assignment); a run that already started keeps the
chain it started with.

It also attaches the per-request tracer. LangServe's `per_req_config_modifier` may only
set the keys in `config_keys` for batch requests (batch drops every other key after the
modifier runs), so the modifier puts the tracer in `configurable` and the binding moves it
into `callbacks` for every endpoint alike.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import merge_configs

__all__ = ["TRACER_CONFIG_KEY", "LiveChain"]

# Double underscore: LangChain does not copy such configurable keys into run metadata.
TRACER_CONFIG_KEY = "__promptserve_tracer"


def with_tracer(config: RunnableConfig) -> RunnableConfig:
    """`config` with the tracer its `configurable` carries added to its callbacks."""
    tracer = (config.get("configurable") or {}).get(TRACER_CONFIG_KEY)
    if not isinstance(tracer, BaseCallbackHandler):  # a client cannot smuggle one in
        return config
    callbacks = config.get("callbacks")
    if callbacks is None:
        merged: Any = [tracer]
    elif isinstance(callbacks, list):
        merged = [*callbacks, tracer]
    else:  # a callback manager (astream_log and astream_events pass their own)
        merged = callbacks.copy()
        merged.add_handler(tracer, inherit=True)
    return {**config, "callbacks": merged}


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
            return with_tracer(configs[0] or {})
        return with_tracer(merge_configs(self.config, *configs))
