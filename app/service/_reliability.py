"""Wiring of the reliability parts: spooled delivery, pending feedback, API keys.

Kept out of `_app.py` so the factory only calls three functions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from app.feedback._pending import PendingFeedback
from app.feedback._routes import FeedbackService
from app.keys import KeyRing
from app.observability import metrics
from app.service._guards import ApiKeyMiddleware
from promptserve.tracing import LocalHandler, LogDelivery

if TYPE_CHECKING:
    from fastapi import FastAPI
    from promptlayer import AsyncPromptLayer

    from app.config import Settings
    from app.feedback import FeedbackTokens

__all__ = ["install_guards", "start_delivery", "start_feedback"]

# Shutdown: how long in-flight logs may take before they are spooled instead.
_FLUSH_SECONDS = 5.0
# Waiting feedback is retried this often (from 1 s, doubling, while PromptLayer is down).
_FEEDBACK_RETRY_SECONDS = 15.0


def install_guards(app: FastAPI, settings: Settings, chain_paths: Sequence[str]) -> None:
    """API keys (if required) on every chain route; batch and stream limits are the
    routes' own (`promptserve.server.add_routes`)."""
    if settings.require_api_key:
        app.add_middleware(ApiKeyMiddleware, keys=KeyRing(settings.api_keys), prefixes=chain_paths)


async def start_delivery(
    settings: Settings,
    *,
    base_url: str,
    api_key: str,
    stack: contextlib.AsyncExitStack,
    local: Mapping[str, LocalHandler] | None = None,
) -> LogDelivery:
    """The process's log delivery, spooling into the data directory; closed with `stack`."""
    delivery = LogDelivery(
        base_url=base_url,
        api_key=api_key,
        local=local,
        spool_dir=settings.spool_dir,
        wait_budget=settings.log_wait_seconds,
        queue_size=settings.delivery_queue_size,
        batch_max=settings.delivery_batch_max,
        batch_posts=settings.delivery_batch_posts,
        metrics=metrics,
    )
    # Closing flushes what is in flight (bounded) and spools the rest: SIGTERM loses nothing.
    stack.push_async_callback(delivery.aclose, _FLUSH_SECONDS)
    await delivery.start()
    return delivery


async def start_feedback(
    settings: Settings,
    *,
    tokens: FeedbackTokens,
    client: AsyncPromptLayer,
    delivery: LogDelivery,
    stack: contextlib.AsyncExitStack,
) -> FeedbackService:
    """/feedback's service: scores by run id wait on disk and apply when the log lands;
    scores PromptLayer did not take in time (an outage) wait there too, and are retried."""
    pending = await asyncio.to_thread(
        PendingFeedback,
        settings.spool_dir / "feedback.jsonl",
        max_age_seconds=settings.feedback_token_ttl_seconds,
    )
    service = FeedbackService(
        tokens=tokens,
        keys=KeyRing(settings.api_keys),
        client=client,
        runs=delivery.request_id_for_run,
        pending=pending,
        require_key=settings.require_api_key,
    )
    delivery.add_listener(service.on_landed)
    retry = asyncio.create_task(service.retry_pending_forever(_FEEDBACK_RETRY_SECONDS))

    async def stop_retry() -> None:
        retry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retry

    # Its first round, at once, applies the scores kept through a restart.
    stack.push_async_callback(stop_retry)
    return service
