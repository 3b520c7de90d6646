"""Logs delivered straight into the embedded backend, without HTTP to ourselves.

In embedded mode the backend runs in this very process; posting each log over loopback cost
the service about as much CPU as serving the request (BENCHMARKS.md, "Traced invoke").
`/log-request` is answered here by the route's own function (`ingest_log`: same JSON checks,
validation and store write, same idempotency key); every other call still goes over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.backend.api.requests import ingest_log
from app.backend.errors import ApiError
from app.tracing import LocalHandler, PostResult

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["in_process_handlers"]

logger = logging.getLogger(__name__)


def in_process_handlers(backend_app: FastAPI) -> dict[str, LocalHandler]:
    """Handlers for the delivery's Poster: `/log-request` into `backend_app`'s open store."""

    async def log_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> PostResult:
        store = backend_app.state.store  # opened by the backend's lifespan, entered first
        try:
            answer = await ingest_log(store, dict(body), headers.get("Idempotency-Key"))
        except ApiError as error:
            # What HTTP would answer 4xx: never retried, as over the wire.
            logger.warning("log refused by the embedded backend: %s", error)
            return PostResult(error.status, transient=False)
        except Exception:
            # The store failed (disk full, database gone): spool and retry later.
            logger.exception("embedded backend could not store a log")
            return PostResult(None, transient=True)
        return PostResult(201, answer)

    return {"/log-request": log_request}
