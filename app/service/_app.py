"""The promptserve application: the catalog's chains on traced LangServe routes, /feedback,
health, and (unless PROMPTLAYER_BASE_URL points elsewhere) the embedded backend at
/promptlayer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from promptlayer import AsyncPromptLayer, PromptLayer

from app.backend import create_backend_app, resolve_backend_api_key
from app.config import Settings
from app.feedback import FeedbackTokens
from app.feedback._routes import router as feedback_router
from app.observability import ObservabilityMiddleware, record_delivery_stats
from app.publishing import seed_registry
from app.secrets_store import load_or_create_secret
from app.service._catalog import check_unique, discover_chains
from app.service._embedded import internal_listener
from app.service._health import router as health_router
from app.service._in_process import in_process_handlers
from app.service._limits import BodySizeLimitMiddleware
from app.service._local import local_model_if_needed
from app.service._probes import model_probe, registry_probe
from app.service._reliability import install_guards, start_delivery, start_feedback
from app.service._seed_lock import seed_lock
from promptserve import Chain
from promptserve.prompts import (
    PromptStore,
    TemplateCache,
    afetch_split,
    afetch_template,
    build_chat_model,
)
from promptserve.server import CHAIN_ENDPOINTS, add_routes
from promptserve.server._trace import TRACE_SCOPE_KEY
from promptserve.tracing import LocalHandler, LogDelivery

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["ChatModelFactory", "create_app"]

ChatModelFactory = Callable[[str, Mapping[str, Any]], "BaseChatModel"]
"""(template name, its `metadata.model`) → the chat model its calls use instead of ChatOpenAI."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Registry:
    """Where PromptLayer is, as the service reaches it."""

    base_url: str
    api_key: str
    # Endpoints answered in this process (the embedded backend), skipping HTTP.
    local: Mapping[str, LocalHandler] | None = None


def create_app(
    settings: Settings | None = None,
    *,
    chains: Sequence[Chain] | None = None,
    chat_model: ChatModelFactory | None = None,
) -> FastAPI:
    """Build the service; its prompts are fetched and its chains routed when the lifespan
    starts.

    `chains` defaults to the catalog (`discover_chains`: the `chains` package and the
    template files with a route). `chat_model` (benchmarks) swaps every prompt's ChatOpenAI
    for another model; everything else (registry template, prompt, tracing, id rewriting)
    stays as served.
    """
    settings = settings if settings is not None else Settings()
    catalog = check_unique(chains) if chains is not None else discover_chains(
        settings.chains_package, templates_dir=settings.templates_dir
    )
    backend_app = None
    backend_key = None
    if settings.promptlayer_base_url is None:
        backend_key = resolve_backend_api_key(settings)
        backend_app = create_backend_app(settings, api_key=backend_key)
    elif settings.promptlayer_api_key is None:
        raise ValueError("PROMPTLAYER_API_KEY is required when PROMPTLAYER_BASE_URL is set")
    tokens = _feedback_tokens(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            # Unless the CLI already runs the bundled model for all workers.
            model_settings = await local_model_if_needed(settings, stack)
            if backend_app is not None:
                assert backend_key is not None
                await stack.enter_async_context(backend_app.router.lifespan_context(backend_app))
                base_url = await stack.enter_async_context(internal_listener(backend_app))
                registry = _Registry(base_url, backend_key, in_process_handlers(backend_app))
                await asyncio.to_thread(_seed, settings, registry)
            else:
                assert settings.promptlayer_base_url and settings.promptlayer_api_key
                registry = _Registry(
                    settings.promptlayer_base_url, settings.promptlayer_api_key.get_secret_value()
                )
            await _start_service(app, model_settings, catalog, registry, tokens, stack, chat_model)
            yield

    app = FastAPI(title="promptserve", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    if backend_app is not None:
        app.mount("/promptlayer", backend_app)
        _redirect_dashboard(app)
    app.include_router(health_router)
    app.include_router(feedback_router)
    install_guards(app, settings, [chain.path for chain in catalog])
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outermost: counts and logs every request, 413s and errors included.
    app.add_middleware(ObservabilityMiddleware, trace_scope_key=TRACE_SCOPE_KEY)
    return app


async def _start_service(
    app: FastAPI,
    settings: Settings,
    catalog: Sequence[Chain],
    registry: _Registry,
    tokens: FeedbackTokens,
    stack: contextlib.AsyncExitStack,
    chat_model: ChatModelFactory | None = None,
) -> None:
    client = AsyncPromptLayer(api_key=registry.api_key, base_url=registry.base_url)
    delivery = await start_delivery(
        settings,
        base_url=registry.base_url,
        api_key=registry.api_key,
        stack=stack,
        local=registry.local,
    )
    app.state.delivery = delivery  # its stats() feed /metrics
    # One pool to the model server per app, closed with it (see promptserve.prompts.model).
    model_http = openai.DefaultAsyncHttpxClient()
    stack.push_async_callback(model_http.aclose)

    model_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None

    def build_model(template_name: str, model_metadata: Mapping[str, Any]) -> BaseChatModel:
        if chat_model is not None:
            return chat_model(template_name, model_metadata)
        return build_chat_model(
            model_metadata,
            api_key=model_key,
            base_url=settings.openai_base_url,
            model_name_override=settings.model_name,
            template_name=template_name,
            http_async_client=model_http,
        )

    store = PromptStore(
        (prompt for chain in catalog for prompt in chain.registry_prompts),
        fetch=lambda prompt: afetch_template(client, prompt),
        build_model=build_model,
        cache=TemplateCache(settings.data_dir / "templates"),
        # Split release labels (docs/RELEASES.md); a registry without the route has none.
        fetch_split=lambda prompt: afetch_split(client, prompt),
    )
    await store.load()
    for chain in catalog:
        # No include_callback_events: TracedRunnable leaves LangServe's event aggregator out
        # of every run (promptserve.server._traced_runnable says why), so none would return.
        add_routes(
            app,
            chain.runnable,
            path=chain.path,
            name=chain.name,
            store=store,
            prompts=chain.prompts,
            input_type=chain.input_type,
            output_type=chain.output_type,
            delivery=delivery,
            tokens=tokens,
            wait_seconds=settings.log_wait_seconds,
            max_batch_inputs=settings.max_batch_size,
            max_stream_seconds=settings.max_stream_seconds,
        )
    _chain_routes_first(app, catalog)
    app.state.prompts = store
    app.state.chains = tuple(catalog)
    app.state.probes = {
        "registry": registry_probe(base_url=registry.base_url, api_key=registry.api_key),
        "model": model_probe(
            model_http, base_url=settings.openai_base_url, api_key=model_key or "not-needed"
        ),
    }
    app.state.feedback = await start_feedback(
        settings, tokens=tokens, client=client, delivery=delivery, stack=stack
    )
    for task in (
        asyncio.create_task(store.refresh_forever(settings.refresh_interval_seconds)),
        asyncio.create_task(_publish_delivery_stats(delivery)),
    ):
        stack.push_async_callback(_cancelled, task)


def _chain_routes_first(app: FastAPI, catalog: Sequence[Chain]) -> None:
    """Match the chain endpoints first, then the rest of the chain routes, then the others.

    The router tries routes in order, and LangServe adds 29 routes per chain: with the
    endpoints of every chain first (5 each), a request to the last chain of the catalog
    passes 5 routes per chain before it, not 29 (bench: `critique` and `together`,
    instructions per /example/invoke). Chain paths share no path with the others, so the
    order changes only which route is tried first.
    """
    prefixes = tuple(chain.path + "/" for chain in catalog)
    endpoints = tuple(f"{chain.path}/{e}" for chain in catalog for e in CHAIN_ENDPOINTS)

    def rank(route: object) -> int:
        path = getattr(route, "path", "")
        if path in endpoints:
            return 0
        return 1 if path.startswith(prefixes) else 2

    # A stable sort: each group keeps its own order.
    app.router.routes.sort(key=rank)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _publish_delivery_stats(delivery: LogDelivery, interval: float = 5.0) -> None:
    """Keep this worker's delivery gauges current between scrapes (several workers)."""
    while True:
        record_delivery_stats(delivery.stats())
        await asyncio.sleep(interval)


def _redirect_dashboard(app: FastAPI) -> None:
    """PRODUCT's address of the dashboard, /dashboard/, leads to the mounted backend's."""

    @app.get("/dashboard", include_in_schema=False)
    @app.get("/dashboard/", include_in_schema=False)
    async def dashboard() -> RedirectResponse:
        return RedirectResponse("/promptlayer/dashboard/", status_code=307)


def _seed(settings: Settings, registry: _Registry) -> None:
    """Publish the bundled templates that the embedded registry does not have yet."""
    client = PromptLayer(api_key=registry.api_key, base_url=registry.base_url)
    # Workers and replicas start together: one seeds, the others then find it done.
    with seed_lock(settings.sqlalchemy_url):
        seed_registry(settings.templates_dir, client)


def _feedback_tokens(settings: Settings) -> FeedbackTokens:
    if settings.feedback_secret is not None:
        secret = settings.feedback_secret.get_secret_value()
    else:
        secret, _ = load_or_create_secret(settings.data_dir / "feedback_secret")
    return FeedbackTokens(secret=secret.encode(), ttl_seconds=settings.feedback_token_ttl_seconds)
