"""The bundled model end to end: invoke, stream (data events, then the id event), feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from app.backend.store.engine import make_engine
from app.backend.store.requests import get_request
from app.config import Settings
from app.local_model import MODEL_ALIAS
from app.service import create_app
from tests.live.conftest import MAX_TOKENS
from tests.utils.servers import serve_in_thread

INPUT = {"input": {"product": "toasters"}}


@pytest.fixture(scope="module")
def served(local_settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    # No OpenAI key or URL: the lifespan starts the bundled model and stops it after.
    app = create_app(local_settings)
    with serve_in_thread(app, startup_timeout=120) as url:
        yield url, app


def _stored(settings: Settings, request_id: int) -> dict:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            found = get_request(connection, request_id=request_id)
    finally:
        engine.dispose()
    assert found is not None
    return found


def _usage(stored: dict) -> tuple[int, int]:
    return int(stored["input_tokens"]), int(stored["output_tokens"])


def test_invoke_answers_with_the_local_model_and_logs_tokens(
    served: tuple[str, FastAPI], local_settings: Settings
) -> None:
    url, _ = served
    answer = httpx.post(f"{url}/example/invoke", json=INPUT, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body["output"], str) and body["output"].strip()
    request_id = body["metadata"]["promptlayer_request_id"]
    assert isinstance(request_id, int)
    stored = _stored(local_settings, request_id)
    assert MODEL_ALIAS in json.dumps(stored, default=str)
    prompt_tokens, completion_tokens = _usage(stored)
    assert prompt_tokens > 10
    # The template's max_tokens reached llama.cpp (ChatOpenAI sends max_completion_tokens).
    assert 0 < completion_tokens <= MAX_TOKENS


def test_stream_sends_several_data_events_then_the_id_event(
    served: tuple[str, FastAPI], local_settings: Settings
) -> None:
    url, _ = served
    events: list[tuple[str, str]] = []
    with httpx.stream("POST", f"{url}/example/stream", json=INPUT, timeout=60) as response:
        assert response.status_code == 200
        event, data = "", ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                data = line[len("data: "):]
            elif not line and event:
                events.append((event, data))
                event, data = "", ""
        if event:
            events.append((event, data))
    names = [name for name, _ in events]
    # LangServe's own metadata event (run id) opens the stream; ours closes it.
    assert names.count("data") >= 3, names
    assert names[-2:] == ["metadata", "end"], names
    assert names[1:-2] == ["data"] * (len(names) - 3), names
    text = "".join(json.loads(data) for name, data in events if name == "data")
    assert text.strip()
    ids = json.loads(events[-2][1])
    assert isinstance(ids["promptlayer_request_id"], int) and ids["feedback_token"]
    # Token usage is logged for streams too (llama.cpp adapted to stream_options).
    stored = _stored(local_settings, ids["promptlayer_request_id"])
    prompt_tokens, completion_tokens = _usage(stored)
    assert prompt_tokens > 10 and 0 < completion_tokens <= MAX_TOKENS


def test_feedback_on_a_local_model_answer(served: tuple[str, FastAPI]) -> None:
    url, _ = served
    metadata = httpx.post(f"{url}/example/invoke", json=INPUT, timeout=60).json()["metadata"]
    scored = httpx.post(
        f"{url}/feedback",
        json={"request_id": metadata["promptlayer_request_id"], "score": 75,
              "feedback_token": metadata["feedback_token"], "comment": "short and sweet"},
    )
    assert scored.status_code == 200, scored.text
    assert scored.json() == {"request_id": metadata["promptlayer_request_id"], "name": "default",
                             "score": 75, "comment_recorded": True}


def test_readyz_checks_the_local_model(served: tuple[str, FastAPI]) -> None:
    url, _ = served
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["model"] is True


def test_extract_answers_an_object_that_fits_the_schema(
    served: tuple[str, FastAPI], local_settings: Settings
) -> None:
    # llama.cpp constrains every token to the template's JSON schema (app/_llama_server.py).
    url, _ = served
    text = "Ada Lovelace loves her new laptop, it is wonderful."
    answer = httpx.post(f"{url}/extract/invoke", json={"input": {"text": text}}, timeout=120)
    assert answer.status_code == 200, answer.text
    output = answer.json()["output"]
    assert set(output) == {"name", "sentiment"}
    assert isinstance(output["name"], str)
    assert output["sentiment"] in ("positive", "negative", "neutral")
    (request_id,) = answer.json()["metadata"]["promptlayer_request_ids"]
    assert _stored(local_settings, request_id)["status"] == "SUCCESS"


def test_critique_makes_two_calls_logged_under_their_own_prompts(
    served: tuple[str, FastAPI], local_settings: Settings
) -> None:
    url, _ = served
    answer = httpx.post(f"{url}/critique/invoke", json={"input": {"product": "kites"}},
                        timeout=120)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["output"]["slogan"].strip() and body["output"]["critique"].strip()
    first, second = body["metadata"]["promptlayer_request_ids"]
    assert "prompt:slogan" in _stored(local_settings, first)["tags"]
    assert "prompt:critique" in _stored(local_settings, second)["tags"]
