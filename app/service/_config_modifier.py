"""LangServe's `per_req_config_modifier`: a fresh tracer for every invocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.service._live_chain import TRACER_CONFIG_KEY
from app.service._tags import endpoint_of, route_tags
from app.service._trace_middleware import TRACE_SCOPE_KEY, RequestTrace
from app.tracing import PromptLayerTracer

if TYPE_CHECKING:
    from fastapi import Request

    from app.service._chains import ChainRuntime
    from app.tracing import LogDelivery

__all__ = ["tracing_config_modifier"]

ConfigModifier = Callable[[dict[str, Any], "Request"], dict[str, Any]]


def tracing_config_modifier(
    *, runtime: ChainRuntime, chain_name: str, route: str, delivery: LogDelivery
) -> ConfigModifier:
    """A modifier that gives each request of `route` a tracer with route-derived tags."""

    def modifier(config: dict[str, Any], request: Request) -> dict[str, Any]:
        trace = request.scope.setdefault(TRACE_SCOPE_KEY, RequestTrace())
        # Batch calls the modifier once per config; one tracer serves the whole request.
        if trace.tracer is None:
            served = runtime.current(chain_name)
            endpoint = endpoint_of(request.scope["path"])  # not request.url: builds a URL
            trace.tracer = PromptLayerTracer(
                delivery,
                tags=route_tags(
                    route=route,
                    endpoint=endpoint,
                    chain=chain_name,
                    prompt_name=served.prompt.name,
                    prompt_version=served.version,
                    prompt_label=served.spec.label,
                ),
                prompt=served.prompt,
                metadata={"langserve_endpoint": endpoint, "route": route},
            )
        configurable = dict(config.get("configurable") or {})
        configurable[TRACER_CONFIG_KEY] = trace.tracer
        return {**config, "configurable": configurable}

    return modifier
