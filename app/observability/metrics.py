"""Prometheus metrics of the service, safe with several worker processes.

With `serve --workers N` the CLI points PROMETHEUS_MULTIPROC_DIR at an emptied folder
before the workers start; prometheus-client then keeps each worker's values in files
there and `/metrics` sums them (gauges: `livesum`, over live processes). prometheus-client
decides that mode when it is first imported, which is why the CLI sets the variable and
not the app.

Others call the small functions below (`log_delivered`, `count_feedback`, ...) rather than
touching the metric objects, so names and labels live in this one file.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from starlette.responses import Response

__all__ = [
    "count_feedback",
    "log_delivered",
    "log_failed",
    "log_pending",
    "metrics_response",
    "observe_request",
    "record_delivery_stats",
    "reset_multiprocess_dir",
]

_REQUESTS = Counter(
    "promptserve_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
_LATENCY = Histogram(
    "promptserve_http_request_duration_seconds",
    "Time from request to the end of the response (streams: the last event), by route.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
_LOGS_DELIVERED = Counter("promptserve_logs_delivered_total", "Request logs PromptLayer accepted.")
_LOGS_FAILED = Counter(
    "promptserve_logs_failed_total",
    "Request logs lost or set aside, by reason: rejected_<status> (PromptLayer refused the log "
    "for its content; the service's log says why), dropped (queue full with no spool, or "
    "shutdown) or uncertain (no answer from a backend that ignores Idempotency-Key: not resent, "
    "kept in spool/uncertain.jsonl).",
    ["reason"],
)
_LOGS_PENDING = Gauge(
    "promptserve_logs_pending",
    "Request logs in memory waiting for delivery: submitted and not yet settled (delivered, "
    "spooled to disk, refused, dropped or set aside as uncertain).",
    multiprocess_mode="livesum",
)
_FEEDBACK = Counter(
    "promptserve_feedback_total",
    "Feedback submissions by outcome (recorded, pending: kept to apply later, rejected, "
    "unknown_request, failed).",
    ["outcome"],
)


# (route, method, status) → its counter and histogram: `labels()` validates and locks on
# every call (3 of the 5 µs per request here). Routes are templates, so this stays small.
_request_metrics: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and its latency."""
    key = (route, method, status)
    metrics = _request_metrics.get(key)
    if metrics is None:
        metrics = _request_metrics[key] = (
            _REQUESTS.labels(route, method, str(status)),
            _LATENCY.labels(route, method),
        )
    metrics[0].inc()
    metrics[1].observe(seconds)


def log_delivered() -> None:
    """One request log reached PromptLayer."""
    _LOGS_DELIVERED.inc()


def log_failed(reason: str) -> None:
    """One request log was lost or set aside, for `reason` (rejected_<status>, dropped or
    uncertain)."""
    _LOGS_FAILED.labels(reason).inc()


def log_pending(delta: int) -> None:
    """Logs waiting for delivery went up (+1 when scheduled) or down (-1 when settled)."""
    _LOGS_PENDING.inc(delta)


# Figures of the log delivery (LogDelivery.stats()), set by each worker for itself.
_DELIVERY = {
    name: Gauge(
        f"promptserve_delivery_{name}",
        help_text,
        multiprocess_mode="livesum",
    )
    for name, help_text in {
        "queue_depth": "Logs waiting in the in-memory delivery queue.",
        "in_flight": "Logs being posted right now.",
        "spool_pending": "Logs in the disk spool, waiting for PromptLayer.",
        "spool_bytes": "Size of the disk spool in bytes.",
        "failed_attempts_total": "Delivery attempts that failed (each retry counts).",
        "dropped_total": "Logs dropped (queue full with no spool, or shutdown).",
        "log_posts_total": "Posts carrying logs (a batch counts once).",
        "batched_logs_total": "Logs that went in a /log-request/batch post.",
        "uncertain_total": "Logs set aside unanswered by a backend that ignores "
        "Idempotency-Key (not resent, so never stored twice; kept in spool/uncertain.jsonl).",
    }.items()
}


def record_delivery_stats(stats: Mapping[str, int]) -> None:
    """Publish this worker's delivery figures (queue depth, spool size, failures)."""
    for name, gauge in _DELIVERY.items():
        gauge.set(stats.get(name, 0))


def count_feedback(outcome: str) -> None:
    """One /feedback submission ended with `outcome`."""
    _FEEDBACK.labels(outcome).inc()


def metrics_response(multiprocess_dir: Path | None) -> Response:
    """The Prometheus text exposition: this process's metrics, or every worker's."""
    if multiprocess_dir is None:
        registry = REGISTRY
    else:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=str(multiprocess_dir)
        )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def reset_multiprocess_dir(directory: Path) -> None:
    """Empty `directory` (files of a previous run would add to this run's counts)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
