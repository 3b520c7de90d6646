"""Logs delivered straight into the embedded backend, without HTTP to ourselves.

In embedded mode the backend runs in this very process; posting each log over loopback cost
the service about as much CPU as serving the request (BENCHMARKS.md, "Traced invoke").
`/log-request` and `/log-request/batch` are answered here by the routes' own functions
(`ingest_log`, `ingest_log_batch`: same JSON checks, validation and store writes, same
idempotency keys); every other call still goes over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from app.backend.api.requests import ingest_log, ingest_log_batch
from app.backend.errors import ApiError
from promptserve.tracing import BATCH_PATH, LocalHandler, PostResult

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.backend.store import Store

__all__ = ["in_process_handlers"]

logger = logging.getLogger(__name__)


def in_process_handlers(backend_app: FastAPI) -> dict[str, LocalHandler]:
    """Handlers for the delivery's Poster: the log routes, into `backend_app`'s open store."""

    async def answer(call: Callable[[Store], Awaitable[Any]], status: int) -> PostResult:
        store = backend_app.state.store  # opened by the backend's lifespan, entered first
        try:
            body = await call(store)
        except ApiError as error:
            # What HTTP would answer 4xx: never retried, as over the wire.
            logger.warning("log refused by the embedded backend: %s", error)
            return PostResult(error.status, transient=False)
        except Exception:
            # The store failed (disk full, database gone): spool and retry later.
            logger.exception("embedded backend could not store a log")
            return PostResult(None, transient=True)
        return PostResult(status, body)

    async def log_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> PostResult:
        key = headers.get("Idempotency-Key")
        return await answer(lambda store: ingest_log(store, dict(body), key), 201)

    async def log_request_batch(
        body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> PostResult:
        async def results(store: Store) -> dict[str, Any]:
            return {"results": await ingest_log_batch(store, dict(body))}

        return await answer(results, 200)

    return {"/log-request": log_request, BATCH_PATH: log_request_batch}
