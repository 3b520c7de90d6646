"""The ASGI apps under test; each is served alone by `python -m bench.serve KIND`.

- `bare`: a plain FastAPI app with LangServe's `add_routes(app, chain, path="/example")`,
  the chain built from the same registry template as promptserve's, with the fake model;
- `ref-sync` / `ref-async`: `bare` plus a reference SDK handler (bench.reference);
- `traced`: promptserve's own `create_app`, its ChatOpenAI swapped for the same fake
  (the `chat_model` seam); embedded or remote backend as the environment says;
- `backend-nostore`: promptserve's backend app with the store's `write` replaced by a no-op
  that answers a fake id: same routes, auth, JSON parsing, validation, prompt lookup (a read)
  and response; only the database write (and the hop to the writer thread) is gone;
- `bare-handler`: `bare` whose `per_req_config_modifier` gives each invocation a fresh
  no-op async handler (inline, as ours): what LangChain alone charges for any design of
  Issue 3's shape, a handler per invocation, before the handler does anything;
- `traced-nohttp` / `traced-aiohttp`: analysis only, see bench.experiments.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

from chains.catalog import CATALOG, build_chain, fetch_template
from fastapi import FastAPI, Request
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langserve import add_routes
from promptlayer import AsyncPromptLayer, PromptLayer

from app.backend import create_backend_app, resolve_backend_api_key
from app.config import Settings
from app.service import _reliability as reliability_module
from app.service import create_app
from bench.experiments import AiohttpDelivery, NoHttpDelivery
from bench.fake_model import FakeChatModel, fake_chat_model
from bench.reference import AsyncSDKHandler, SyncSDKHandler
from promptserve.tracing import LogDelivery

__all__ = ["APPS", "bare_app", "bare_handler_app", "nostore_backend_app", "reference_app",
           "traced_app"]

EXAMPLE = CATALOG[0]


def _example_chain(settings: Settings, callbacks: list[BaseCallbackHandler] | None) -> Any:
    """The example chain from the registry template promptserve serves, with the fake model."""
    assert settings.promptlayer_base_url and settings.promptlayer_api_key
    client = PromptLayer(api_key=settings.promptlayer_api_key.get_secret_value(),
                         base_url=settings.promptlayer_base_url)
    template = fetch_template(client, EXAMPLE)
    chain = build_chain(EXAMPLE, template, api_key=None, base_url=None, model=FakeChatModel())
    return chain.with_config(callbacks=callbacks) if callbacks else chain


def bare_app(settings: Settings) -> FastAPI:
    """Bare LangServe serving the example chain."""
    app = FastAPI()
    add_routes(app, _example_chain(settings, None), path=EXAMPLE.path)
    return app


class _NoopHandler(AsyncCallbackHandler):
    """Handles nothing; inline like PromptLayerTracer, so dispatch costs the same."""

    run_inline = True


def bare_handler_app(settings: Settings) -> FastAPI:
    """Bare LangServe plus a fresh no-op handler per invocation (per_req_config_modifier)."""

    def modifier(config: dict[str, Any], request: Request) -> dict[str, Any]:
        return {**config, "callbacks": [_NoopHandler()]}

    app = FastAPI()
    add_routes(app, _example_chain(settings, None), path=EXAMPLE.path,
               per_req_config_modifier=modifier)
    return app


def reference_app(settings: Settings, *, use_async: bool) -> FastAPI:
    """Bare LangServe plus a handler that logs through the PromptLayer SDK."""
    assert settings.promptlayer_base_url and settings.promptlayer_api_key
    key, url = settings.promptlayer_api_key.get_secret_value(), settings.promptlayer_base_url
    handler: BaseCallbackHandler = (
        AsyncSDKHandler(AsyncPromptLayer(api_key=key, base_url=url)) if use_async
        else SyncSDKHandler(PromptLayer(api_key=key, base_url=url))
    )
    app = FastAPI()
    add_routes(app, _example_chain(settings, [handler]), path=EXAMPLE.path)
    return app


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

    async def no_write(fn: Callable[[Any], Any]) -> tuple[int, None]:
        # insert_request's result shape: (request id, whether it was a repeat).
        return next(ids), None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opened(app):  # opens (and migrates) the real store: reads stay real
            app.state.store.write = no_write
            yield

    app.router.lifespan_context = lifespan
    return app


APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "bare": bare_app,
    "bare-handler": bare_handler_app,
    "ref-sync": lambda s: reference_app(s, use_async=False),
    "ref-async": lambda s: reference_app(s, use_async=True),
    "traced": traced_app,
    "backend-nostore": nostore_backend_app,
    "traced-nohttp": lambda s: experiment_app(s, delivery=NoHttpDelivery),
    "traced-aiohttp": lambda s: experiment_app(s, delivery=AiohttpDelivery),
}
