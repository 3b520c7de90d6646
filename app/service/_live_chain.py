"""A chain whose implementation can be swapped while it is being served.

LangServe registers a runnable once; a registry refresh must change what that route
runs without touching the routes. `LiveChain` is a `RunnableBinding` whose `bound` is
replaced atomically (one attribute assignment); a run that already started keeps the
chain it started with.

It also attaches the per-request tracer. LangServe's `per_req_config_modifier` may only
set the keys in `config_keys` for batch requests (batch drops every other key after the
modifier runs), so the modifier puts the tracer in `configurable` and the binding's
config factory moves it into `callbacks` for every endpoint alike.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig

__all__ = ["TRACER_CONFIG_KEY", "LiveChain"]

# Double underscore: LangChain does not copy such configurable keys into run metadata.
TRACER_CONFIG_KEY = "__promptserve_tracer"


def _attach_tracer(config: RunnableConfig) -> RunnableConfig:
    tracer = config.get("configurable", {}).get(TRACER_CONFIG_KEY)
    if tracer is None or isinstance(tracer, str):  # a client cannot smuggle one in
        return {}
    return {"callbacks": [tracer]}


class LiveChain(RunnableBinding[Any, Any]):
    """Serves the chain it currently holds; `swap` installs a new one."""

    def __init__(self, bound: Runnable[Any, Any], **kwargs: Any) -> None:
        """Start serving `bound`; `with_config` and friends copy through here too."""
        kwargs.setdefault("config_factories", [_attach_tracer])
        super().__init__(bound=bound, **kwargs)

    def swap(self, chain: Runnable[Any, Any]) -> None:
        """Serve `chain` from the next run on."""
        self.bound = chain
