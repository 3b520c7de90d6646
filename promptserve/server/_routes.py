"""`add_routes`: LangServe's `add_routes`, plus everything promptserve adds to a route.

    from promptserve.server import add_routes
    add_routes(app, chain, path="/critique", delivery=delivery, tokens=tokens)

Every run is a traced root (each LLM call logged, linked to its registry prompt, grouped with
the run's other calls), its prompt versions pinned for the run; invoke and batch answers
carry the request ids, the prompt versions and a feedback token in their metadata (invoke
also in a header); the three stream endpoints end with an event carrying the same. The
routes are LangServe's own: `RemoteRunnable` and the playground work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from langserve import add_routes as langserve_add_routes

from promptserve.prompts import PromptStore, RegistryPrompt, registry_prompts_in
from promptserve.server._config_modifier import ConfigModifier, tracing_config_modifier
from promptserve.server._guards import BatchLimit, StreamDeadline
from promptserve.server._responses import TracedEndpoint
from promptserve.server._tags import CHAIN_ENDPOINTS, STREAM_ENDPOINTS
from promptserve.server._traced_runnable import TracedRunnable

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from promptserve.server._tokens import FeedbackTokens
    from promptserve.tracing import LogDelivery

__all__ = ["add_routes", "served_output_type"]


def add_routes(
    app: FastAPI,
    runnable: Runnable[Any, Any],
    *,
    path: str,
    delivery: LogDelivery,
    tokens: FeedbackTokens | None = None,
    name: str | None = None,
    store: PromptStore | None = None,
    prompts: Sequence[RegistryPrompt] = (),
    input_type: Any = "auto",
    output_type: Any = "auto",
    per_req_config_modifier: ConfigModifier | None = None,
    wait_seconds: float = 2.0,
    max_batch_inputs: int | None = None,
    max_stream_seconds: float | None = None,
    **langserve_options: Any,
) -> TracedRunnable:
    """Serve `runnable` at `path` on `app` with LangServe's routes, traced into `delivery`.

    - `store`: where the registry prompts' versions come from (each run pins them); without
      one, the versions given to each prompt with `install`.
    - `prompts`: registry prompts the runnable uses where they cannot be found by walking it
      (inside a plain function); the others are found.
    - `output_type`: "auto" keeps LangServe's guess unless the runnable answers an object,
      which LangServe would cut down to the fields it guessed: then any JSON value is served.
    - `tokens`: feedback tokens for each answer (none without).
    - `wait_seconds`: how long an answer waits for its logs' ids.
    - `max_batch_inputs` / `max_stream_seconds`: 413 for larger batches; streams stopped
      with an error event after that long.
    Other keywords go to LangServe's `add_routes` (`config_keys`, `enabled_endpoints`, ...).
    """
    if not isinstance(app, FastAPI):
        # FastAPI re-creates an APIRouter's routes when it is included, without the wrappers.
        raise TypeError("add_routes mounts on a FastAPI app, not on an APIRouter")
    chain_name = name or path.strip("/").replace("/", "_") or "chain"
    found = registry_prompts_in(runnable)
    served = TracedRunnable(
        bound=runnable, prompts=[*found, *(p for p in prompts if p not in found)], store=store
    )
    before = len(app.router.routes)
    modifier = tracing_config_modifier(
        route=path or "/", chain_name=chain_name, delivery=delivery, then=per_req_config_modifier
    )
    if input_type == "auto":
        _check_derived_input(served, path)
    if output_type == "auto":
        output_type = served_output_type(runnable)
    langserve_add_routes(
        app, served, path=path, input_type=input_type, output_type=output_type,
        per_req_config_modifier=modifier, **langserve_options,
    )
    for route in app.router.routes[before:]:
        endpoint = _chain_endpoint(route)
        if endpoint is None or not isinstance(route, APIRoute):
            continue
        wrapped: Any = TracedEndpoint(route.app, endpoint=endpoint, tokens=tokens,
                                      wait_seconds=wait_seconds)
        if endpoint == "batch" and max_batch_inputs is not None:
            wrapped = BatchLimit(wrapped, max_inputs=max_batch_inputs)
        if endpoint in STREAM_ENDPOINTS and max_stream_seconds is not None:
            wrapped = StreamDeadline(wrapped, max_seconds=max_stream_seconds)
        route.app = wrapped
    return served


def _chain_endpoint(route: Any) -> str | None:
    """The chain endpoint a route of this add_routes call runs, if it runs one."""
    if not isinstance(route, APIRoute) or "POST" not in (route.methods or ()):
        return None
    endpoint = route.path.rsplit("/", 1)[-1]
    return endpoint if endpoint in CHAIN_ENDPOINTS else None


def _check_derived_input(served: TracedRunnable, path: str) -> None:
    """Refuse an input schema LangChain derived as an object with no fields: LangServe would
    validate every request with it and drop every variable the chain needs."""
    schema = served.get_input_schema().model_json_schema()
    if schema.get("type") == "object" and not schema.get("properties") \
            and not schema.get("additionalProperties"):
        raise ValueError(
            f"chain {path}: LangChain derives an input schema without fields for this "
            "runnable (the first step after an assign asks for nothing), so every variable "
            "would be dropped; declare input_type (a pydantic model of the chain's input)"
        )


def served_output_type(runnable: Runnable[Any, Any]) -> Any:
    """LangServe's guess of the output type, unless it is an object (it would drop fields)."""
    try:
        schema = runnable.get_output_schema().model_json_schema()  # type: ignore[union-attr]
    except Exception:
        return Any
    if schema.get("type") == "object" or "properties" in schema or "$ref" in schema:
        return Any
    return "auto"
