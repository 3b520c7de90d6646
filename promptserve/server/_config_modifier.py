"""LangServe's `per_req_config_modifier`: the request's tracer, with route-derived tags, and
the caller's release key and segment headers copied into `configurable` (split labels route
by them; `promptserve.prompts._caller`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from promptserve.prompts._caller import CallerError, caller_headers, with_caller
from promptserve.server._tags import route_tags
from promptserve.server._trace import TRACE_CONFIG_KEY, TRACE_SCOPE_KEY, RequestTrace
from promptserve.tracing import PromptLayerTracer

if TYPE_CHECKING:
    from fastapi import Request

    from promptserve.tracing import LogDelivery

__all__ = ["ConfigModifier", "tracing_config_modifier"]

ConfigModifier = Callable[[dict[str, Any], "Request"], dict[str, Any]]


def tracing_config_modifier(
    *, route: str, chain_name: str, delivery: LogDelivery, then: ConfigModifier | None = None
) -> ConfigModifier:
    """A modifier giving each request of `route` a tracer; `then` (the caller's own
    modifier, if any) runs first, so it cannot remove the trace."""

    def modifier(config: dict[str, Any], request: Request) -> dict[str, Any]:
        if then is not None:
            config = then(config, request)
        trace = request.scope.get(TRACE_SCOPE_KEY)
        if not isinstance(trace, RequestTrace):
            return config  # a route promptserve does not trace (schemas, playground)
        # Batch calls the modifier once per config; one tracer serves the whole request.
        if trace.tracer is None:
            trace.tracer = PromptLayerTracer(
                delivery,
                tags=route_tags(route=route, endpoint=trace.endpoint, chain=chain_name),
                metadata={"langserve_endpoint": trace.endpoint, "route": route},
            )
        configurable = dict(config.get("configurable") or {})
        configurable[TRACE_CONFIG_KEY] = trace
        try:
            key, metadata = caller_headers(request.scope["headers"])
        except CallerError as error:
            raise HTTPException(422, str(error)) from None
        if key is not None or metadata is not None:
            with_caller(configurable, key, metadata)
        return {**config, "configurable": configurable}

    return modifier
