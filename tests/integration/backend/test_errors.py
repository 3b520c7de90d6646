"""Auth, malformed input and the small extras (both spellings, /healthz, /v1/traces)."""

from __future__ import annotations

import time

import httpx
import pytest
from promptlayer import PromptLayer
from promptlayer.exceptions import PromptLayerAPIError, PromptLayerAuthenticationError

from app.backend.store.requests import get_request
from tests.integration.backend.conftest import API_KEY, Backend

NOW = time.time()
LOG = {
    "provider": "openai",
    "model": "m",
    "input": {"type": "chat", "messages": []},
    "output": {"type": "chat", "messages": []},
    "request_start_time": NOW,
    "request_end_time": NOW,
}


@pytest.fixture(scope="module")
def request_id(backend: Backend) -> int:
    answer = httpx.post(f"{backend.url}/log-request", json=LOG, headers={"X-API-KEY": API_KEY})
    return int(answer.json()["id"])


def test_wrong_key_is_refused(backend: Backend) -> None:
    wrong = PromptLayer(api_key="wrong", base_url=backend.url)
    with pytest.raises(PromptLayerAuthenticationError):
        wrong.templates.get("anything")
    with pytest.raises(PromptLayerAPIError, match="API key"):
        wrong.log_request(**LOG)
    for method, path in [
        ("POST", "/log-request"),
        ("POST", "/library-track-score"),
        ("POST", "/create-group"),
        ("POST", "/rest/prompt-templates"),
        ("GET", "/prompt-templates"),
    ]:
        for headers in ({}, {"X-API-KEY": "wrong"}):
            answer = httpx.request(
                method,
                f"{backend.url}{path}",
                headers=headers,
                json={"api_key": "nope"} if method == "POST" else None,
            )
            assert answer.status_code == 401, (path, headers)
            assert "API key" in answer.json()["message"]


def test_key_in_body_or_header(backend: Backend) -> None:
    by_header = httpx.post(f"{backend.url}/create-group", headers={"X-API-KEY": API_KEY})
    by_body = httpx.post(f"{backend.url}/create-group", json={"api_key": API_KEY})
    assert (by_header.status_code, by_body.status_code) == (200, 200)
    assert by_body.json()["id"] == by_header.json()["id"] + 1


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/library-track-score", {"score": "high"}, "score"),
        ("/library-track-score", {"score": True}, "score"),
        ("/library-track-score", {"score": 101}, "score"),
        ("/library-track-score", {"score": -1}, "score"),
        ("/library-track-score", {"score": 50.5}, "score"),
        ("/library-track-score", {"score": 5, "request_id": True}, "request_id"),
        ("/library-track-score", {"score": 5, "request_id": "12a"}, "request_id"),
        ("/library-track-metadata", {"metadata": {"k": 1}}, "metadata.k"),
        ("/library-track-metadata", {"metadata": ["k"]}, "metadata"),
        ("/library-track-prompt", {"prompt_name": 3}, "prompt_name"),
        ("/track-group", {"group_id": "g"}, "group_id"),
        ("/log-request", {**LOG, "request_start_time": "yesterday"}, "request_start_time"),
        ("/log-request", {**LOG, "request_start_time": 1e300}, "request_start_time"),
        ("/log-request", {"model": "m"}, "provider"),
        ("/prompt-templates/x", {"version": "one"}, "version"),
        ("/prompt-templates/x", {"version": 0}, "version"),
        ("/prompt-templates/x", {"input_variables": []}, "input_variables"),
    ],
)
def test_wrong_types_are_400(
    backend: Backend, request_id: int, path: str, body: dict, fragment: str
) -> None:
    body = {"request_id": request_id, **body}
    answer = httpx.post(f"{backend.url}{path}", json=body, headers={"X-API-KEY": API_KEY})
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["message"]


@pytest.mark.parametrize(
    ("part", "fragment"),
    [
        ({"metadata": {"k": 1, "kept": "v"}}, "metadata.k"),
        ({"tags": "t"}, "tags"),
        ({"input_tokens": -3}, "input_tokens"),
        ({"status": "FINE"}, "status"),
        ({"score": 500}, "score"),
    ],
)
def test_parts_the_hosted_schema_refuses_are_stored_without(
    backend: Backend, part: dict, fragment: str
) -> None:
    # A log is stored without the part the hosted PromptLayer would refuse it for, and says
    # so, rather than lost: the delivery never retries a 400.
    answer = httpx.post(f"{backend.url}/log-request", json={**LOG, **part},
                        headers={"X-API-KEY": API_KEY})
    assert answer.status_code == 201, answer.text
    stored = backend.read(lambda c: get_request(c, request_id=answer.json()["id"]))
    assert fragment in stored["metadata"]["promptserve_stored_without"]
    if "metadata" in part:
        assert stored["metadata"]["kept"] == "v" and "k" not in stored["metadata"]


@pytest.mark.parametrize(
    "path",
    ["/log-request", "/library-track-score", "/prompt-templates/x", "/rest/prompt-templates"],
)
@pytest.mark.parametrize("content", [b"{", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_body_is_400(backend: Backend, path: str, content: bytes) -> None:
    answer = httpx.post(
        f"{backend.url}{path}",
        content=content,
        headers={"X-API-KEY": API_KEY, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["message"]


def test_bad_query_and_headers_are_400(backend: Backend) -> None:
    headers = {"X-API-KEY": API_KEY}
    page = httpx.get(f"{backend.url}/prompt-templates", params={"page": "abc"}, headers=headers)
    assert page.status_code == 400 and "page" in page.json()["message"]
    long_key = httpx.post(
        f"{backend.url}/log-request", json=LOG, headers={**headers, "Idempotency-Key": "k" * 300}
    )
    assert long_key.status_code == 400 and "Idempotency-Key" in long_key.json()["message"]


def test_unknown_path_is_json_404(backend: Backend) -> None:
    answer = httpx.post(f"{backend.url}/no-such-endpoint", json={})
    assert answer.status_code == 404 and answer.json()["message"]


def test_rest_spellings(backend: Backend, request_id: int) -> None:
    auth = {"api_key": API_KEY, "request_id": request_id}
    group = httpx.post(f"{backend.url}/rest/create-group", json=auth).json()["id"]
    for path, body in [
        ("/rest/track-score", {"score": 3, "name": "rest"}),
        ("/rest/track-metadata", {"metadata": {"rest": "yes"}}),
        ("/rest/track-group", {"group_id": group}),
    ]:
        answer = httpx.post(f"{backend.url}{path}", json={**auth, **body})
        assert answer.status_code == 200, path
        assert answer.json()["success"] is True


def test_healthz_and_traces(backend: Backend) -> None:
    assert httpx.get(f"{backend.url}/healthz").json() == {"status": "ok"}
    traces = httpx.post(
        f"{backend.url}/v1/traces",
        content=b"\x0a\x00",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert traces.status_code == 200


def _raw_log(extra: str) -> bytes:
    return (
        '{"provider": "openai", "model": "m", "input": {}, "output": {},'
        f' "request_start_time": 1, "request_end_time": 2{extra}}}'
    ).encode()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (_raw_log(', "function_name": "a\\u0000b"'), "NUL"),
        (_raw_log(', "parameters": {"x": "\\ud800"}'), "surrogate"),
        (_raw_log(', "parameters": {"x": NaN}'), "NaN"),
        (_raw_log(', "price": Infinity'), "Infinity"),
        (_raw_log(', "input_tokens": 100000000000'), "input_tokens"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),
    ],
)
def test_values_the_database_cannot_store_are_400(
    backend: Backend, content: bytes, fragment: str
) -> None:
    answer = httpx.post(
        f"{backend.url}/log-request",
        content=content,
        headers={"X-API-KEY": API_KEY, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert fragment in answer.json()["message"]


def test_paired_surrogate_escapes_are_fine(backend: Backend) -> None:
    answer = httpx.post(
        f"{backend.url}/log-request",
        content=_raw_log(', "tags": ["\\ud83d\\ude00"]'),
        headers={"X-API-KEY": API_KEY, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201


def test_nul_in_path_and_query_is_400(backend: Backend) -> None:
    headers = {"X-API-KEY": API_KEY}
    by_path = httpx.post(f"{backend.url}/prompt-templates/a%00b", json={}, headers=headers)
    by_query = httpx.get(
        f"{backend.url}/prompt-templates", params={"name": "a\x00"}, headers=headers
    )
    assert (by_path.status_code, by_query.status_code) == (400, 400)
    huge_id = httpx.post(f"{backend.url}/prompt-templates/{'9' * 30}", json={}, headers=headers)
    assert huge_id.status_code == 404
