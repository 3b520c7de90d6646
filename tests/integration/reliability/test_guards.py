"""API keys on chain routes and /feedback, client config limits, batch and stream caps."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.service import create_app
from tests.integration.reliability.conftest import SERVICE_KEY
from tests.integration.service.conftest import BACKEND_KEY, Service, service_settings
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

WRONG_KEY = "not-the-key-0123456789"
GOOD = {"Authorization": f"Bearer {SERVICE_KEY}"}
MAX_BATCH = 3


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, FakeOpenAI]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as llm_url:
        settings = service_settings(
            tmp_path_factory.mktemp("guarded"), llm_url, api_keys=[SERVICE_KEY],
            require_api_key=True, max_batch_size=MAX_BATCH, max_stream_seconds=1.0,
        )
        app = create_app(settings)
        engine = sa.create_engine(settings.sqlalchemy_url)
        with serve_in_thread(app) as url:
            yield Service(url, app, settings, fake, engine), fake
        engine.dispose()


CHAIN_CALLS = [
    ("POST", "/example/invoke", {"input": {"product": "pens"}}),
    ("POST", "/example/batch", {"inputs": [{"product": "pens"}]}),
    ("POST", "/example/stream", {"input": {"product": "pens"}}),
    ("GET", "/example/input_schema", None),
    ("POST", "/feedback", {"request_id": 1, "score": 5}),
]


@pytest.mark.parametrize(("method", "path", "body"), CHAIN_CALLS)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": WRONG_KEY},
                                     {"Authorization": f"Bearer {WRONG_KEY}"},
                                     {"Authorization": "Basic abc"}])
def test_missing_or_wrong_keys_get_401(guarded, method, path, body, headers) -> None:
    service, _ = guarded
    response = httpx.request(method, service.url + path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert WRONG_KEY not in response.text and SERVICE_KEY not in response.text


@pytest.mark.parametrize("headers", [GOOD, {"X-API-Key": SERVICE_KEY}])
def test_a_service_key_opens_chain_routes(guarded, headers: dict[str, str]) -> None:
    service, _ = guarded
    response = httpx.post(f"{service.url}/example/invoke", json={"input": {"product": "x"}},
                          headers=headers)
    assert response.status_code == 200, response.text
    request_id = response.json()["metadata"]["promptlayer_request_id"]
    feedback = httpx.post(f"{service.url}/feedback", headers=headers,
                          json={"request_id": request_id, "score": 70})
    assert feedback.status_code == 200, feedback.text


def test_health_needs_no_key(guarded) -> None:
    service, _ = guarded
    assert httpx.get(f"{service.url}/healthz").status_code == 200


def test_embedded_backend_requires_its_own_key(guarded) -> None:
    service, _ = guarded
    body = {"provider": "openai", "model": "m", "input": {}, "output": {}}
    for headers in ({}, GOOD, {"X-API-KEY": SERVICE_KEY}):
        response = httpx.post(f"{service.url}/promptlayer/log-request", json=body,
                              headers=headers)
        assert response.status_code == 401, response.text


def test_keys_never_reach_logs_or_stored_metadata(
    guarded, caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = guarded
    with caplog.at_level(logging.DEBUG):
        httpx.post(f"{service.url}/example/invoke", json={"input": {"product": "x"}},
                   headers={"X-API-Key": WRONG_KEY})
        answer = httpx.post(f"{service.url}/example/invoke", json={"input": {"product": "x"}},
                            headers={**GOOD, "X-API-Key": SERVICE_KEY}).json()
        httpx.post(f"{service.url}/feedback", json={"request_id": 10**9, "score": 1},
                   headers=GOOD)
    stored = service.stored_request(answer["metadata"]["promptlayer_request_id"])
    text = caplog.text + json.dumps(stored, default=str)
    for key in (SERVICE_KEY, WRONG_KEY, BACKEND_KEY):
        assert key not in text


def test_clients_cannot_set_callbacks_tags_run_names_or_metadata(guarded) -> None:
    service, _ = guarded
    config = {"tags": ["client-tag"], "run_name": "client-run", "metadata": {"client": "x"},
              "callbacks": ["client-callback"], "recursion_limit": 1}
    response = httpx.post(f"{service.url}/example/invoke", headers=GOOD,
                          json={"input": {"product": "x"}, "config": config})
    # LangServe keeps only `configurable` (config_keys); the rest is dropped, not applied.
    assert response.status_code == 200, response.text
    stored = service.stored_request(response.json()["metadata"]["promptlayer_request_id"])
    assert "client-tag" not in stored["tags"]
    assert "client" not in stored["metadata"]
    assert "client-run" not in json.dumps(stored, default=str)


def test_clients_cannot_smuggle_a_tracer_through_configurable(guarded) -> None:
    service, _ = guarded
    config = {"configurable": {"__promptserve_tracer": "evil"}}
    response = httpx.post(f"{service.url}/example/invoke", headers=GOOD,
                          json={"input": {"product": "x"}, "config": config})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["metadata"]["promptlayer_request_id"] is not None


def test_batch_size_is_capped_with_a_message(guarded) -> None:
    service, _ = guarded
    inputs = [{"product": f"p{i}"} for i in range(MAX_BATCH + 1)]
    response = httpx.post(f"{service.url}/example/batch", json={"inputs": inputs}, headers=GOOD)
    assert response.status_code == 413
    assert f"at most {MAX_BATCH} inputs" in response.json()["detail"]
    ok = httpx.post(f"{service.url}/example/batch", json={"inputs": inputs[:MAX_BATCH]},
                    headers=GOOD)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["output"]) == MAX_BATCH


def test_a_stream_past_its_time_limit_ends_with_an_error_event(guarded) -> None:
    service, fake = guarded
    fake.stream_delay = 0.4  # ~10 chunks: about 4 s against a 1 s limit
    try:
        with httpx.stream("POST", f"{service.url}/example/stream", headers=GOOD, timeout=30,
                          json={"input": {"product": "a b c d e f g h"}}) as response:
            assert response.status_code == 200
            text = response.read().decode()
    finally:
        fake.stream_delay = 0.0
    events = [block for block in text.split("\r\n\r\n") if block.strip()]
    assert events[-2].startswith("event: error")
    assert "exceeded 1 s" in events[-2]
    assert events[-1].startswith("event: end")


def test_body_size_limit_answers_413(guarded, tmp_path: Path) -> None:
    service, _ = guarded
    big = {"input": {"product": "x" * (service.settings.max_body_bytes + 1)}}
    response = httpx.post(f"{service.url}/example/invoke", json=big, headers=GOOD)
    assert response.status_code == 413
