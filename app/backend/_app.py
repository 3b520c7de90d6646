"""The backend's FastAPI app: works at a server's root or mounted under a prefix.

When mounted, the host app must enter `backend_app.router.lifespan_context(backend_app)`
from its own lifespan (Starlette does not run a mounted app's lifespan): that is where the
store is opened (and migrated) and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.backend.api import registry, releases, requests, tracking
from app.backend.dashboard import install_dashboard
from app.backend.errors import ApiError
from app.backend.store import open_store
from app.config import Settings
from app.keys import KeyRing
from app.releases.service import GuardrailRunner
from promptserve import json_codec

__all__ = ["create_backend_app"]

logger = logging.getLogger(__name__)


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path")) or "request"


def _message(text: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    # Messages may quote the request (a field's key, a path); a lone surrogate there could
    # not be written as UTF-8, and would turn a 4xx into a 500.
    return JSONResponse({"message": json_codec.LONE_SURROGATE.sub("\ufffd", text)},
                        status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _message(exc.message, exc.status)

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [f"{_location(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()[:5]]
        return _message("; ".join(problems), 400)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _message(str(exc.detail), exc.status_code, exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("backend: unexpected error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"message": "internal error"}, status_code=500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def create_backend_app(settings: Settings, *, api_key: str) -> FastAPI:
    """The PromptLayer-compatible API over the configured database, accepting `api_key`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opening migrates the schema: blocking work, so off the event loop.
        store = await asyncio.to_thread(open_store, settings.sqlalchemy_url)
        app.state.store = store
        # The release guardrail: soon after each score (tracking routes poke it) and
        # every 30 s, so a bad challenger rolls back even when scores stop.
        guardrails = GuardrailRunner(store)
        app.state.guardrails = guardrails
        ticking = asyncio.create_task(guardrails.run_forever())
        try:
            yield
        finally:
            app.state.guardrails = None
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking
            await guardrails.close()
            app.state.store = None
            await asyncio.to_thread(store.close)

    app = FastAPI(title="promptserve embedded PromptLayer backend", lifespan=lifespan)
    app.state.backend_api_key = api_key
    app.state.backend_key_ring = KeyRing([api_key])
    app.state.settings = settings
    app.state.store = None
    app.state.guardrails = None
    _install_error_handlers(app)
    app.include_router(registry.router)
    app.include_router(requests.router)
    app.include_router(tracking.router)
    app.include_router(releases.router)
    install_dashboard(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.post(
        "/v1/traces",
        response_class=Response,
        responses={200: {"content": {"application/x-protobuf": {}}, "description": "Empty."}},
    )
    async def traces() -> Response:
        """SDK tracing (OTLP): accepted and discarded; an empty body is an empty OTLP reply."""
        return Response(status_code=200, media_type="application/x-protobuf")

    return app
