"""Feedback: signed tokens and the `/feedback` endpoint."""

from __future__ import annotations

from promptserve.server._tokens import (
    ExpiredToken,
    FeedbackTokens,
    InvalidToken,
    request_subject,
    run_subject,
)

__all__ = ["ExpiredToken", "FeedbackTokens", "InvalidToken", "request_subject", "run_subject"]
