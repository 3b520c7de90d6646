"""PromptLayer tracing: a per-request LangChain callback handler and pooled log delivery."""

from __future__ import annotations

from promptserve.tracing._delivery import DeliveryError, LogDelivery
from promptserve.tracing._handler import PromptLayerTracer
from promptserve.tracing._poster import BATCH_PATH, LocalHandler, PostResult
from promptserve.tracing._types import PromptRef

__all__ = [
    "BATCH_PATH",
    "DeliveryError",
    "LocalHandler",
    "LogDelivery",
    "PostResult",
    "PromptLayerTracer",
    "PromptRef",
]
