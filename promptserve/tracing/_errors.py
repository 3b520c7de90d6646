"""Map a model exception to PromptLayer's error_type and a safe, bounded error_message."""

from __future__ import annotations

import re

from langchain_core import exceptions as lc

__all__ = ["error_message", "error_type"]

_MAX_MESSAGE = 1024
# Provider keys sometimes appear in error text (e.g. "Incorrect API key provided: sk-...").
_KEY_LIKE = re.compile(r"\b(sk|pk|pl|rk)-[A-Za-z0-9_\-*]{8,}")

# Checked most specific first; LangChain's provider-neutral classes cover most integrations.
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (lc.ModelRateLimitError, "PROVIDER_RATE_LIMIT"),
    (lc.ModelTimeoutError, "PROVIDER_TIMEOUT"),
    (lc.ModelAuthenticationError, "PROVIDER_AUTH_ERROR"),
    (lc.ModelPermissionDeniedError, "PROVIDER_AUTH_ERROR"),
    (TimeoutError, "PROVIDER_TIMEOUT"),
    (lc.ModelError, "PROVIDER_ERROR"),
)
# Fallback by class name anywhere in the MRO, for SDK errors LangChain did not wrap.
_BY_NAME = {
    "RateLimitError": "PROVIDER_RATE_LIMIT",
    "APITimeoutError": "PROVIDER_TIMEOUT",
    "TimeoutException": "PROVIDER_TIMEOUT",
    "AuthenticationError": "PROVIDER_AUTH_ERROR",
    "PermissionDeniedError": "PROVIDER_AUTH_ERROR",
    "APIError": "PROVIDER_ERROR",
    "APIStatusError": "PROVIDER_ERROR",
    "APIConnectionError": "PROVIDER_ERROR",
    "HTTPError": "PROVIDER_ERROR",
}


def error_type(exc: BaseException) -> str:
    """PromptLayer error_type for `exc` (UNKNOWN_ERROR when nothing matches)."""
    kind = next((name for cls, name in _BY_CLASS if isinstance(exc, cls)), None)
    if kind is None:
        kind = next((_BY_NAME[c.__name__] for c in type(exc).__mro__ if c.__name__ in _BY_NAME),
                    "UNKNOWN_ERROR")
    if kind == "PROVIDER_RATE_LIMIT" and "insufficient_quota" in str(exc):
        return "PROVIDER_QUOTA_LIMIT"
    return kind


def error_message(exc: BaseException) -> str:
    """`exc` as text, key-like tokens masked, at most 1024 characters."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = _KEY_LIKE.sub(lambda m: f"{m.group(1)}-***", text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
