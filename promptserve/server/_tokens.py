"""Signed, expiring feedback tokens bound to one PromptLayer request.

A token is `<expiry>.<signature>`: the expiry in epoch seconds and an HMAC-SHA256 over
the subject and the expiry. The subject is the request id (`req:123`), or the run id
(`run:<uuid>`) for a response whose log had not landed yet. Nothing is stored: any
replica holding the same secret can check a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

__all__ = ["ExpiredToken", "FeedbackTokens", "InvalidToken", "request_subject", "run_subject"]


class InvalidToken(Exception):
    """The token is malformed, forged, or bound to another request."""


class ExpiredToken(Exception):
    """The token was genuine but its lifetime is over."""


@dataclass(frozen=True)
class FeedbackTokens:
    """Issues and checks feedback tokens with one secret."""

    secret: bytes
    ttl_seconds: int

    def issue(self, subject: str, *, now: float | None = None) -> str:
        """A token for `subject` that expires `ttl_seconds` from now."""
        expiry = int((time.time() if now is None else now) + self.ttl_seconds)
        return f"{expiry}.{self._sign(subject, expiry)}"

    def verify(self, token: str, subject: str, *, now: float | None = None) -> None:
        """Raise InvalidToken or ExpiredToken unless `token` is valid for `subject`."""
        expiry_text, _, signature = token.partition(".")
        if not expiry_text.isdigit() or not signature:
            raise InvalidToken("feedback_token is malformed")
        expiry = int(expiry_text)
        if not hmac.compare_digest(signature, self._sign(subject, expiry)):
            raise InvalidToken("feedback_token does not match this request")
        if expiry < (time.time() if now is None else now):
            raise ExpiredToken("feedback_token has expired")

    def _sign(self, subject: str, expiry: int) -> str:
        message = f"{subject}|{expiry}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def request_subject(request_id: int) -> str:
    """The token subject of a delivered log."""
    return f"req:{request_id}"


def run_subject(run_id: str) -> str:
    """The token subject of a run whose log is still pending."""
    return f"run:{run_id}"
