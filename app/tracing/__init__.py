"""PromptLayer tracing: a per-request LangChain callback handler and pooled log delivery."""

from __future__ import annotations

from app.tracing._delivery import DeliveryError, LogDelivery
from app.tracing._handler import PromptLayerTracer
from app.tracing._poster import BATCH_PATH, LocalHandler, PostResult
from app.tracing._types import PromptRef

__all__ = [
    "BATCH_PATH",
    "DeliveryError",
    "LocalHandler",
    "LogDelivery",
    "PostResult",
    "PromptLayerTracer",
    "PromptRef",
]
