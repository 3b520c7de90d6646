"""Bad input to the chain routes is a clear 4xx, never a 5xx."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.service.conftest import Service


@pytest.mark.parametrize(
    "body",
    [
        {"input": {}},
        {"input": {"product": 3}},
        {"input": "toasters"},
        {"inputs": []},
        {},
    ],
)
def test_missing_or_mistyped_variables_are_422(service: Service, body: dict) -> None:
    response = httpx.post(f"{service.url}/example/invoke", json=body)
    assert response.status_code == 422, response.text


def test_malformed_json_is_422(service: Service) -> None:
    response = httpx.post(
        f"{service.url}/example/invoke",
        content=b'{"input": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_oversize_body_is_413(service: Service) -> None:
    big = "x" * (service.settings.max_body_bytes + 1)
    response = httpx.post(f"{service.url}/example/invoke", json={"input": {"product": big}})
    assert response.status_code == 413
    assert "larger than" in response.json()["message"]


def test_oversize_chunked_body_is_413(service: Service) -> None:
    def chunks():
        for _ in range(20):
            yield b"x" * (service.settings.max_body_bytes // 10)

    response = httpx.post(f"{service.url}/example/invoke", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    "config",
    [
        {"callbacks": ["x"]},
        {"tags": ["mine"]},
        {"run_name": "mine"},
        {"metadata": {"k": "v"}},
        {"configurable": {"__promptserve_tracer": "x"}},
    ],
)
def test_clients_cannot_set_callbacks_tags_run_names_or_metadata(
    service: Service, config: dict
) -> None:
    response = httpx.post(
        f"{service.url}/example/invoke",
        json={"input": {"product": "mugs"}, "config": config},
    )
    if response.status_code == 200:
        request_id = response.json()["metadata"]["promptlayer_request_id"]
        stored = service.stored_request(request_id)
        assert "mine" not in stored["tags"]
        assert "k" not in stored["metadata"]
    else:
        assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    "inputs", [[{}], [{"product": 3}], [{"product": "x", "unknown": "y"}], [{"product": "x"}, {}]]
)
def test_a_batch_with_a_bad_input_is_422(service: Service, inputs: list) -> None:
    response = httpx.post(f"{service.url}/example/batch", json={"inputs": inputs},
                          headers={"X-API-Key": "service-key-for-tests"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
