"""Operations: Prometheus metrics, JSON logs, and the middleware that feeds both."""

from __future__ import annotations

from app.observability.logging import JsonFormatter, log_config, request_id_var
from app.observability.metrics import (
    count_feedback,
    log_delivered,
    log_failed,
    log_pending,
    metrics_response,
    record_delivery_stats,
    reset_multiprocess_dir,
)
from app.observability.middleware import ObservabilityMiddleware

__all__ = [
    "JsonFormatter",
    "ObservabilityMiddleware",
    "count_feedback",
    "log_config",
    "log_delivered",
    "log_failed",
    "log_pending",
    "metrics_response",
    "record_delivery_stats",
    "request_id_var",
    "reset_multiprocess_dir",
]
