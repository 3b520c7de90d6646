"""The ASGI apps under test; each is served alone by `python -m bench.serve KIND`.

- `bare`: a plain FastAPI app with LangServe's `add_routes(app, chain, path="/example")`,
  the chain built from the same registry template as promptserve's, with the fake model;
- `bare-critique`: the same for /critique, its two calls from the two templates
  (bench._chains);
- `ref-sync` / `ref-async`: `bare` plus a reference SDK handler (bench.reference);
- `traced`: promptserve's own `create_app`, its whole discovered catalog (/example and
  /critique among it), every ChatOpenAI swapped for the same fake (the `chat_model` seam);
  embedded or remote backend as the environment says;
- `backend-nostore`: promptserve's backend app whose writes answer fake ids at once (no
  writer thread, no database): same routes, auth, JSON parsing, validation, prompt lookup
  (a read) and response, for one log and for a batch; only the database write (and the hop
  to the writer thread) is gone;
- `bare-handler`: `bare` whose `per_req_config_modifier` gives each invocation a fresh
  no-op async handler (inline, as ours): what LangChain alone charges for any design of
  the traced service's shape, a handler per invocation, before the handler does anything;
- `traced-nohttp` / `traced-aiohttp`: analysis only, see bench.experiments.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langserve import add_routes
from promptlayer import AsyncPromptLayer, PromptLayer

from app.backend import create_backend_app, resolve_backend_api_key
from app.backend.api import requests as requests_api
from app.config import Settings
from app.service import _reliability as reliability_module
from app.service import create_app
from bench._chains import BARE_CHAINS, BareChain
from bench.experiments import AiohttpDelivery, NoHttpDelivery
from bench.fake_model import fake_chat_model
from bench.reference import AsyncSDKHandler, SyncSDKHandler
from promptserve.tracing import LogDelivery

__all__ = ["APPS", "bare_app", "bare_handler_app", "nostore_backend_app", "reference_app",
           "traced_app"]


def _bare_chain(settings: Settings, name: str = "example") -> BareChain:
    """Chain `name` of bench._chains, from the registry promptserve fetches from."""
    assert settings.promptlayer_base_url and settings.promptlayer_api_key
    client = PromptLayer(api_key=settings.promptlayer_api_key.get_secret_value(),
                         base_url=settings.promptlayer_base_url)
    return BARE_CHAINS[name](client)


def _serve(chain: BareChain, callbacks: list[BaseCallbackHandler] | None = None,
           **options: Any) -> FastAPI:
    """A FastAPI app with stock LangServe routes for `chain` (`callbacks` on every run)."""
    runnable = chain.runnable.with_config(callbacks=callbacks) if callbacks else chain.runnable
    app = FastAPI()
    add_routes(app, runnable, path=chain.path, input_type=chain.input_type,
               output_type=chain.output_type, **options)
    return app


def bare_app(settings: Settings, chain: str = "example") -> FastAPI:
    """Bare LangServe serving one chain (the example by default)."""
    return _serve(_bare_chain(settings, chain))


class _NoopHandler(AsyncCallbackHandler):
    """Handles nothing; inline like PromptLayerTracer, so dispatch costs the same."""

    run_inline = True


def bare_handler_app(settings: Settings) -> FastAPI:
    """Bare LangServe plus a fresh no-op handler per invocation (per_req_config_modifier)."""

    def modifier(config: dict[str, Any], request: Request) -> dict[str, Any]:
        return {**config, "callbacks": [_NoopHandler()]}

    return _serve(_bare_chain(settings), per_req_config_modifier=modifier)


def reference_app(settings: Settings, *, use_async: bool) -> FastAPI:
    """Bare LangServe plus a handler that logs through the PromptLayer SDK."""
    assert settings.promptlayer_base_url and settings.promptlayer_api_key
    key, url = settings.promptlayer_api_key.get_secret_value(), settings.promptlayer_base_url
    handler: BaseCallbackHandler = (
        AsyncSDKHandler(AsyncPromptLayer(api_key=key, base_url=url)) if use_async
        else SyncSDKHandler(PromptLayer(api_key=key, base_url=url))
    )
    return _serve(_bare_chain(settings), [handler])


def traced_app(settings: Settings) -> FastAPI:
    """promptserve itself, serving the fake model."""
    return create_app(settings, chat_model=fake_chat_model)


def experiment_app(settings: Settings, *, delivery: type[LogDelivery]) -> FastAPI:
    """promptserve with a bench-only delivery class (bench.experiments); this process only."""
    # start_delivery (app.service._reliability) builds the service's delivery.
    reliability_module.LogDelivery = delivery  # type: ignore[attr-defined]
    return traced_app(settings)


def nostore_backend_app(settings: Settings) -> FastAPI:
    """The backend app whose store answers writes with fake ids and stores nothing."""
    app = create_backend_app(settings, api_key=resolve_backend_api_key(settings))
    opened = app.router.lifespan_context
    ids = itertools.count(1)

    def fake_inserts(connection: Any, *, requests: Sequence[Any], now: Any) -> list[Any]:
        # insert_requests' result shape: (request id, created) per request, in order.
        return [(next(ids), True) for _ in requests]

    async def no_write(fn: Callable[[Any], Any]) -> Any:
        # The log routes' writes call `insert_requests` (one log or a batch) and shape its
        # answer themselves: run them inline against the fake, with no connection.
        return fn(None)

    # This process only: the routes look the function up in their module at each write.
    requests_api.insert_requests = fake_inserts  # type: ignore[attr-defined]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opened(app):  # opens (and migrates) the real store: reads stay real
            app.state.store.write = no_write
            yield

    app.router.lifespan_context = lifespan
    return app


APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "bare": bare_app,
    "bare-critique": lambda s: bare_app(s, "critique"),
    "bare-handler": bare_handler_app,
    "ref-sync": lambda s: reference_app(s, use_async=False),
    "ref-async": lambda s: reference_app(s, use_async=True),
    "traced": traced_app,
    "backend-nostore": nostore_backend_app,
    "traced-nohttp": lambda s: experiment_app(s, delivery=NoHttpDelivery),
    "traced-aiohttp": lambda s: experiment_app(s, delivery=AiohttpDelivery),
}
