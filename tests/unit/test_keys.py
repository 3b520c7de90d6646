"""The key ring: which key a request presents, and whether the ring holds it (in constant time,
against every key, never logged)."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from app import keys as keys_module
from app.keys import KeyRing, presented_key

KEYS = ["first-key-0123", "second-key-4567", "third"]
_COMPARE = hmac.compare_digest


def _headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


def _request(*pairs: tuple[str, str]) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": _headers(*pairs)}
    return Request(scope)


# -- KeyRing -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_every_key_of_the_ring_is_allowed(key: str) -> None:
    assert KeyRing(KEYS).allows(key)


@pytest.mark.parametrize(
    "key",
    ["first-key-012", "first-key-01234", "FIRST-KEY-0123", " first-key-0123", "thirdx",
     "unrelated", "first-key-0123second-key-4567"],
)
def test_near_misses_are_refused(key: str) -> None:
    assert not KeyRing(KEYS).allows(key)


@pytest.mark.parametrize("key", [None, "", 0, 123, b"third", ["third"], {"key": "third"}])
def test_missing_empty_and_non_string_keys_are_refused(key: Any) -> None:
    assert not KeyRing(KEYS).allows(key)


def test_empty_keys_in_the_ring_open_nothing() -> None:
    ring = KeyRing(["", "real"])
    assert len(ring) == 1
    assert not ring.allows("")
    assert ring.allows("real")


def test_an_empty_ring_allows_nothing() -> None:
    ring = KeyRing([])
    assert len(ring) == 0
    assert not ring.allows("anything")


def test_secret_str_keys_are_read_for_their_value() -> None:
    ring = KeyRing([SecretStr("hidden-key"), "plain-key"])
    assert ring.allows("hidden-key")
    assert ring.allows("plain-key")
    assert not ring.allows("**********")


class _CompareSpy:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, a: bytes, b: bytes) -> bool:
        self.calls.append((len(a), len(b)))
        return _COMPARE(a, b)


@pytest.mark.parametrize("key", [KEYS[0], KEYS[-1], "no-such-key"])
def test_a_key_is_compared_with_every_key_without_early_exit(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    ring = KeyRing(KEYS)
    spy = _CompareSpy()
    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    ring.allows(key)
    assert len(spy.calls) == len(KEYS)


def test_comparisons_are_between_equal_lengths_whatever_the_key_lengths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ring = KeyRing(["k", "a-much-longer-key-" * 10])
    spy = _CompareSpy()
    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    ring.allows("medium-length")
    assert spy.calls and {a for a, _ in spy.calls} == {b for _, b in spy.calls} == {32}


def test_the_ring_keeps_no_key_in_the_clear() -> None:
    ring = KeyRing(KEYS)
    held = ring._salt + b"".join(ring._digests)
    for key in KEYS:
        assert key.encode() not in held


def test_repr_and_str_show_no_key() -> None:
    ring = KeyRing(KEYS)
    for text in (repr(ring), str(ring), f"{ring}"):
        assert "3 keys" in text
        for key in KEYS:
            assert key not in text


def test_nothing_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        ring = KeyRing(KEYS)
        ring.allows(KEYS[0])
        ring.allows("wrong-key")
        presented_key(_headers(("authorization", f"Bearer {KEYS[1]}")))
    assert caplog.records == []


# -- presented_key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("authorization", "Bearer tok")], "tok"),
        ([("authorization", "bearer tok")], "tok"),
        ([("authorization", "BEARER  tok ")], "tok"),
        ([("x-api-key", "xk")], "xk"),
        ([("authorization", "Bearer tok"), ("x-api-key", "xk")], "tok"),
        ([("x-api-key", "xk"), ("authorization", "Bearer tok")], "tok"),
        ([("authorization", "Basic abc"), ("x-api-key", "xk")], "xk"),
        ([("x-api-key", "one"), ("x-api-key", "two")], "one"),
        ([("authorization", "Basic abc")], None),
        ([("authorization", "Bearer")], None),
        ([("authorization", "Bearer ")], None),
        ([("x-api-key", "")], None),
        ([("content-type", "application/json")], None),
        ([], None),
    ],
)
def test_the_presented_key(pairs: list[tuple[str, str]], expected: str | None) -> None:
    assert presented_key(_headers(*pairs)) == expected
    assert presented_key(_request(*pairs)) == expected


def test_header_names_match_in_any_case() -> None:
    assert presented_key(_headers(("X-API-Key", "xk"))) == "xk"
    assert presented_key(_headers(("Authorization", "Bearer tok"))) == "tok"


def test_without_bearer_only_x_api_key_counts() -> None:
    both = (("authorization", "Bearer tok"), ("x-api-key", "xk"))
    assert presented_key(_request(*both), bearer=False) == "xk"
    assert presented_key(_headers(both[0]), bearer=False) is None


def test_a_non_ascii_key_matches_byte_for_byte() -> None:
    key = "clé-ünïcode-κλειδί"
    ring = KeyRing([key])
    presented = presented_key([(b"x-api-key", key.encode())])
    assert presented is not None and ring.allows(presented)
    # What Starlette's `request.headers` would give (latin-1) is not the key.
    assert not ring.allows(key.encode().decode("latin-1"))


def test_undecodable_header_bytes_round_trip() -> None:
    raw = b"key-\xff\xfe"
    configured = raw.decode("utf-8", "surrogateescape")  # as os.environ holds such a value
    presented = presented_key([(b"authorization", b"Bearer " + raw)])
    assert KeyRing([configured]).allows(presented)
    assert not KeyRing(["key-"]).allows(presented)


def test_a_lone_surrogate_is_refused_not_raised() -> None:
    assert not KeyRing(KEYS).allows("\ud800")
