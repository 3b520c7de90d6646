from __future__ import annotations

import pytest

from app.feedback import ExpiredToken, FeedbackTokens, InvalidToken, request_subject, run_subject

TOKENS = FeedbackTokens(secret=b"s3cret", ttl_seconds=100)


def test_a_token_verifies_for_its_own_subject_until_it_expires() -> None:
    token = TOKENS.issue(request_subject(7), now=1000)
    TOKENS.verify(token, request_subject(7), now=1099)
    with pytest.raises(ExpiredToken):
        TOKENS.verify(token, request_subject(7), now=1101)


@pytest.mark.parametrize("subject", [request_subject(8), run_subject("7"), "req:70"])
def test_a_token_does_not_verify_for_another_subject(subject: str) -> None:
    token = TOKENS.issue(request_subject(7), now=1000)
    with pytest.raises(InvalidToken):
        TOKENS.verify(token, subject, now=1000)


def test_another_secret_or_a_changed_expiry_is_refused() -> None:
    token = FeedbackTokens(secret=b"other", ttl_seconds=100).issue(request_subject(7), now=0)
    with pytest.raises(InvalidToken):
        TOKENS.verify(token, request_subject(7), now=0)
    genuine = TOKENS.issue(request_subject(7), now=0)
    stretched = "9" + genuine  # a later expiry, same signature
    with pytest.raises(InvalidToken):
        TOKENS.verify(stretched, request_subject(7), now=0)


@pytest.mark.parametrize("token", ["", ".", "abc", "12.", ".sig", "x.y"])
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(InvalidToken):
        TOKENS.verify(token, request_subject(7), now=0)
