"""Serving chains: `add_routes` (LangServe's routes plus tracing, ids and feedback tokens).

Needs the server dependencies (FastAPI, LangServe's server extra).
"""

from __future__ import annotations

from promptserve.server._responses import REQUEST_ID_HEADER, TracedEndpoint, run_summary
from promptserve.server._routes import add_routes
from promptserve.server._tags import CHAIN_ENDPOINTS, route_tags
from promptserve.server._tokens import (
    ExpiredToken,
    FeedbackTokens,
    InvalidToken,
    request_subject,
    run_subject,
)
from promptserve.server._trace import RequestTrace
from promptserve.server._traced_runnable import TracedRunnable

__all__ = [
    "CHAIN_ENDPOINTS",
    "REQUEST_ID_HEADER",
    "ExpiredToken",
    "FeedbackTokens",
    "InvalidToken",
    "RequestTrace",
    "TracedEndpoint",
    "TracedRunnable",
    "add_routes",
    "request_subject",
    "route_tags",
    "run_subject",
    "run_summary",
]
