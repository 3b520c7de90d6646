"""invoke and batch over raw HTTP and with stock RemoteRunnable: ids, tokens, tags, logs."""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.service.conftest import Service
from tests.utils.polling import eventually
from tests.utils.remote import remote_runnable

EXPECTED_TEXT = "echo: Write a one-sentence slogan for a company that makes toasters."


def test_invoke_returns_output_ids_token_and_header(service: Service) -> None:
    response = httpx.post(f"{service.url}/example/invoke", json={"input": {"product": "toasters"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == EXPECTED_TEXT
    metadata = body["metadata"]
    request_id = metadata["promptlayer_request_id"]
    assert isinstance(request_id, int)
    assert metadata["promptlayer_request_ids"] == [request_id]
    assert isinstance(metadata["feedback_token"], str)
    assert metadata["run_id"]
    assert response.headers["X-PromptLayer-Request-Id"] == str(request_id)


def test_invoke_logs_the_llm_call_with_route_tags(service: Service) -> None:
    response = httpx.post(f"{service.url}/example/invoke", json={"input": {"product": "kettles"}})
    request_id = response.json()["metadata"]["promptlayer_request_id"]
    stored = service.stored_request(request_id)
    assert sorted(stored["tags"]) == sorted(
        [
            "route:/example",
            "endpoint:invoke",
            "chain:example",
            "prompt:example",
            "prompt_version:1",
            "prompt_label:prod",
        ]
    )
    assert stored["status"] == "SUCCESS"
    assert stored["provider"] == "openai"
    assert stored["model"] == "gpt-4o-mini"
    assert stored["output_tokens"] > 0 and stored["input_tokens"] > 0
    messages = stored["input"]["messages"]
    assert messages[-1]["content"][0]["text"].endswith("makes kettles.")
    assert stored["output"]["messages"][0]["content"][0]["text"].endswith("makes kettles.")
    assert stored["prompt_input_variables"] == {"product": "kettles"}
    assert stored["metadata"]["_langchain_run_id"]
    assert stored["metadata"]["langserve_endpoint"] == "invoke"
    assert stored["prompt_version_id"] is not None


def test_batch_gives_each_input_its_own_ids(service: Service) -> None:
    inputs = [{"product": "socks"}, {"product": "lamps"}]
    response = httpx.post(f"{service.url}/example/batch", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    responses = body["metadata"]["responses"]
    ids = [r["promptlayer_request_id"] for r in responses]
    assert len(set(ids)) == 2 and all(isinstance(i, int) for i in ids)
    for output, request_id in zip(body["output"], ids, strict=True):
        stored = service.stored_request(request_id)
        product = stored["prompt_input_variables"]["product"]
        assert output.endswith(f"makes {product}.")
        assert "endpoint:batch" in stored["tags"]


def test_remote_runnable_invoke_and_batch_work_unchanged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    with remote_runnable(f"{service.url}/example/") as remote, caplog.at_level(logging.INFO):
        assert remote.invoke({"product": "toasters"}) == EXPECTED_TEXT
        outputs = remote.batch([{"product": "a"}, {"product": "b"}])
    assert outputs == [
        "echo: Write a one-sentence slogan for a company that makes a.",
        "echo: Write a one-sentence slogan for a company that makes b.",
    ]
    assert not [r for r in caplog.records if r.name.startswith("langserve")]


def test_model_error_is_logged_as_error_and_client_gets_langserve_error(
    service: Service,
) -> None:
    response = httpx.post(f"{service.url}/failing/invoke", json={"input": {"product": "x"}})
    assert response.status_code == 500  # LangServe's own answer to a failing chain

    def logged_error() -> sa.Row | None:
        with service.engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT r.id, r.status, r.error_type, r.error_message FROM requests r "
                    "JOIN request_tags t ON t.request_id = r.id "
                    "WHERE t.tag = 'chain:failing' AND r.status = 'ERROR' LIMIT 1"
                )
            ).first()

    # A failed run has no response to carry its id, so its log lands in the background.
    row = eventually(logged_error)
    assert row.error_type
    assert "500" in row.error_message or "fail" in row.error_message.lower()
