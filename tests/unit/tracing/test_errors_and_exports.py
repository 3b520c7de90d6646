"""Error classification for ERROR logs, and the package's public names."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from langchain_openai.chat_models.base import (
    OpenAIAPIError,
    OpenAIAuthenticationError,
    OpenAIRateLimitError,
    OpenAITimeoutError,
)

import promptserve.tracing
from promptserve.tracing._errors import error_message, error_type

_REQUEST = httpx.Request("POST", "http://x/v1/chat/completions")


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=_REQUEST)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OpenAIRateLimitError("slow down", response=_response(429), body=None),
         "PROVIDER_RATE_LIMIT"),
        (OpenAIRateLimitError("insufficient_quota", response=_response(429), body=None),
         "PROVIDER_QUOTA_LIMIT"),
        (OpenAITimeoutError(_REQUEST), "PROVIDER_TIMEOUT"),
        (OpenAIAuthenticationError("no", response=_response(401), body=None),
         "PROVIDER_AUTH_ERROR"),
        (OpenAIAPIError("boom", response=_response(500), body=None), "PROVIDER_ERROR"),
        (openai.BadRequestError("bad", response=_response(400), body=None), "PROVIDER_ERROR"),
        (openai.RateLimitError("x", response=_response(429), body=None), "PROVIDER_RATE_LIMIT"),
        (TimeoutError(), "PROVIDER_TIMEOUT"),
        (httpx.ReadTimeout("t"), "PROVIDER_TIMEOUT"),
        (ValueError("nope"), "UNKNOWN_ERROR"),
    ],
)
def test_error_type(exc: BaseException, expected: str) -> None:
    assert error_type(exc) == expected


def test_error_message_is_bounded_and_masks_keys() -> None:
    message = error_message(ValueError("Incorrect API key provided: sk-abcdef1234567890"))
    assert message == "ValueError: Incorrect API key provided: sk-***"
    assert len(error_message(ValueError("x" * 5000))) == 1024
    assert error_message(asyncio.CancelledError()) == "CancelledError"


def test_public_names() -> None:
    assert sorted(promptserve.tracing.__all__) == [
        "BATCH_PATH", "DeliveryError", "LocalHandler", "LogDelivery", "PostResult",
        "PromptLayerTracer",
        "PromptRef",
    ]
    # A type alias has no docstring.
    for name in set(promptserve.tracing.__all__) - {"LocalHandler"}:
        assert getattr(promptserve.tracing, name).__doc__
