"""Request log through the SDK and raw HTTP: /log-request, /track-request, idempotency."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import sqlalchemy as sa
from promptlayer import AsyncPromptLayer, PromptLayer

from app.backend.store.requests import get_request
from app.backend.store.schema import requests as requests_table
from tests.integration.backend.conftest import API_KEY, OPENAI_MODEL, Backend, chat

MESSAGE_IN = {
    "type": "chat",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}
MESSAGE_OUT = {
    "type": "chat",
    "messages": [{"role": "assistant", "content": [{"type": "text", "text": "hello"}]}],
}


def stored(backend: Backend, request_id: int) -> dict:
    return backend.read(lambda c: get_request(c, request_id=request_id))


def log_body(**extra: object) -> dict:
    now = time.time()
    body = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": MESSAGE_IN,
        "output": MESSAGE_OUT,
        "request_start_time": now - 1,
        "request_end_time": now,
    }
    return {**body, **extra}


def test_log_request_stores_every_field(pl: PromptLayer, backend: Backend, name: str) -> None:
    pl.templates.publish(
        {"prompt_name": name, "prompt_template": chat("{q}"), "metadata": OPENAI_MODEL}
    )
    start, end = 1_700_000_000.25, 1_700_000_001.5
    result = pl.log_request(
        provider="openai",
        model="gpt-4o-mini",
        input=MESSAGE_IN,
        output=MESSAGE_OUT,
        request_start_time=start,
        request_end_time=end,
        parameters={"temperature": 0.2},
        tags=["route:/example", "chain:example", "route:/example"],
        metadata={"_langchain_run_id": "r1"},
        prompt_name=name,
        prompt_version_number=1,
        prompt_input_variables={"q": "why"},
        input_tokens=11,
        output_tokens=7,
        price=0.001,
        function_name="openai.chat.completions.create",
        api_type="chat-completions",
        status="WARNING",
        error_type="PROVIDER_TIMEOUT",
        error_message="slow",
    )
    assert isinstance(result["id"], int)
    assert result["status"] == "WARNING"
    assert result["prompt_version"]["messages"][1]["content"][0]["text"] == "{q}"
    row = backend.read(lambda c: get_request(c, request_id=result["id"]))
    assert row["kind"] == "log"
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o-mini")
    assert (row["input"], row["output"]) == (MESSAGE_IN, MESSAGE_OUT)
    assert row["parameters"] == {"temperature": 0.2}
    assert row["tags"] == ["chain:example", "route:/example"]
    assert row["metadata"] == {"_langchain_run_id": "r1"}
    assert row["prompt_version_id"] is not None
    assert row["prompt_input_variables"] == {"q": "why"}
    assert (row["input_tokens"], row["output_tokens"], row["price"]) == (11, 7, 0.001)
    assert row["function_name"] == "openai.chat.completions.create"
    assert (row["status"], row["error_type"], row["error_message"]) == (
        "WARNING",
        "PROVIDER_TIMEOUT",
        "slow",
    )
    assert row["api_type"] == "chat-completions"
    assert row["request_start_time"] == datetime(2023, 11, 14, 22, 13, 20, 250000)
    assert row["request_end_time"] == datetime(2023, 11, 14, 22, 13, 21, 500000)
    # The SDK's default score=0 is not a score.
    assert row["scores"] == {}


def test_log_request_scores(pl: PromptLayer, backend: Backend) -> None:
    plain = pl.log_request(**log_body(score=80))
    named = pl.log_request(**log_body(score=0, score_name="helpful"))
    assert backend.read(lambda c: get_request(c, request_id=plain["id"]))["scores"] == {
        "default": 80
    }
    assert backend.read(lambda c: get_request(c, request_id=named["id"]))["scores"] == {
        "helpful": 0
    }


def test_prompt_link_by_id_and_unresolved(pl: PromptLayer, backend: Backend, name: str) -> None:
    published = pl.templates.publish({"prompt_name": name, "prompt_template": chat("a")})
    pl.templates.publish({"prompt_name": name, "prompt_template": chat("b")})
    by_id = pl.log_request(**log_body(prompt_id=published["id"], prompt_version_number=1))
    latest = pl.log_request(**log_body(prompt_id=published["id"]))
    unknown = pl.log_request(**log_body(prompt_name=name + "-nope", prompt_version_number=1))
    rows = [stored(backend, r["id"]) for r in (by_id, latest, unknown)]
    assert rows[0]["prompt_version_id"] == published["prompt_version_id"]
    assert rows[1]["prompt_version_id"] == published["prompt_version_id"] + 1
    assert rows[2]["prompt_version_id"] is None
    assert unknown["prompt_version"] is None


def test_raw_epoch_and_iso_times(backend: Backend) -> None:
    headers = {"X-API-KEY": API_KEY}
    epoch = httpx.post(
        f"{backend.url}/log-request",
        json=log_body(request_start_time=1_700_000_000, request_end_time=1_700_000_002.5),
        headers=headers,
    )
    iso = httpx.post(
        f"{backend.url}/log-request",
        json=log_body(
            request_start_time="2024-05-01T12:00:00+02:00",
            request_end_time="2024-05-01T10:00:03Z",
        ),
        headers=headers,
    )
    assert (epoch.status_code, iso.status_code) == (201, 201)
    rows = [stored(backend, r.json()["id"]) for r in (epoch, iso)]
    assert rows[0]["request_start_time"] == datetime(2023, 11, 14, 22, 13, 20)
    assert rows[0]["request_end_time"] == datetime(2023, 11, 14, 22, 13, 22, 500000)
    assert rows[1]["request_start_time"] == datetime(2024, 5, 1, 10, 0, 0)
    assert rows[1]["request_end_time"] == datetime(2024, 5, 1, 10, 0, 3)


def test_idempotency_key(backend: Backend) -> None:
    key = f"delivery-{time.time_ns()}"
    headers = {"X-API-KEY": API_KEY, "Idempotency-Key": key}
    first = httpx.post(f"{backend.url}/log-request", json=log_body(tags=["t"]), headers=headers)
    again = httpx.post(f"{backend.url}/log-request", json=log_body(tags=["t"]), headers=headers)
    other = httpx.post(
        f"{backend.url}/log-request",
        json=log_body(),
        headers={**headers, "Idempotency-Key": key + "-2"},
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    count = backend.read(
        lambda c: c.scalar(
            sa.select(sa.func.count())
            .select_from(requests_table)
            .where(requests_table.c.idempotency_key == key)
        )
    )
    assert count == 1


async def test_async_log_request(apl: AsyncPromptLayer, backend: Backend) -> None:
    result = await apl.log_request(**log_body(tags=["async"], metadata={"k": "v"}))
    row = backend.read(lambda c: get_request(c, request_id=result["id"]))
    assert (row["tags"], row["metadata"]) == (["async"], {"k": "v"})


def test_track_request(backend: Backend, name: str, pl: PromptLayer) -> None:
    published = pl.templates.publish({"prompt_name": name, "prompt_template": chat("x")})
    group = pl.group.create()
    kwargs = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": 1}
    response = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    answer = httpx.post(
        f"{backend.url}/track-request",
        json={
            "function_name": "openai.chat.completions.create",
            "provider_type": "openai",
            "args": [],
            "kwargs": kwargs,
            "request_response": response,
            "request_start_time": 1_700_000_000.0,
            "request_end_time": 1_700_000_001.0,
            "tags": ["legacy"],
            "metadata": None,
            "api_key": API_KEY,
            "prompt_id": published["id"],
            "prompt_version": 1,
            "group_id": group,
            "return_prompt_blueprint": True,
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True and isinstance(body["request_id"], int)
    assert body["prompt_blueprint"]["type"] == "chat"
    row = backend.read(lambda c: get_request(c, request_id=body["request_id"]))
    assert (row["kind"], row["input"], row["output"]) == ("track", kwargs, response)
    assert (row["input_tokens"], row["output_tokens"], row["parameters"]) == (3, 4, {"n": 1})
    assert (row["prompt_version_id"], row["group_id"]) == (published["prompt_version_id"], group)
    assert row["tags"] == ["legacy"]


def test_prompt_links_follow_the_registry(pl: PromptLayer, backend: Backend, name: str) -> None:
    # Links are remembered per store (app/backend/store/_links.py): what is remembered must
    # never differ from what a fresh lookup would find.
    early = pl.log_request(**log_body(prompt_name=name, prompt_version_number=1))
    first = pl.templates.publish({"prompt_name": name, "prompt_template": chat("a")})
    by_name = [pl.log_request(**log_body(prompt_name=name, prompt_version_number=1))
               for _ in range(2)]
    latest_before = pl.log_request(**log_body(prompt_name=name))
    pl.templates.publish({"prompt_name": name, "prompt_template": chat("b")})
    latest_after = pl.log_request(**log_body(prompt_name=name))
    v2_by_id = pl.log_request(**log_body(prompt_id=first["id"], prompt_version_number=2))
    v2_by_name = pl.log_request(**log_body(prompt_name=name, prompt_version_number=2))
    # An id wins over a name: a wrong name beside a known id still links by the id.
    id_wins = pl.log_request(**log_body(prompt_id=first["id"], prompt_name=name + "-x",
                                        prompt_version_number=1))
    v1 = first["prompt_version_id"]
    links = [stored(backend, r["id"])["prompt_version_id"]
             for r in (early, *by_name, latest_before, latest_after, v2_by_id, v2_by_name,
                       id_wins)]
    assert links == [None, v1, v1, v1, v1 + 1, v1 + 1, v1 + 1, v1]
    assert by_name[1]["prompt_version"] == by_name[0]["prompt_version"]
    assert by_name[1]["prompt_version"]["messages"][-1]["content"][0]["text"] == "a"


def _batch(backend: Backend, payload: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{backend.url}/log-request/batch", json=payload,
                      headers={"X-API-KEY": API_KEY, **headers})


def test_log_request_batch_answers_each_log_as_log_request_would(backend: Backend) -> None:
    key = f"batch-{time.time_ns()}"
    entries = [
        {"idempotency_key": f"{key}-a", "body": log_body(tags=["a"])},
        {"idempotency_key": f"{key}-b", "body": log_body(model=7)},  # not a string
        {"body": log_body(tags=["c"], status="ERROR", error_message="boom")},
        {"idempotency_key": f"{key}-d", "body": log_body(input="hi\u0000")},  # NUL
    ]
    response = _batch(backend, {"requests": entries})
    assert response.status_code == 200
    a, b, c, d = response.json()["results"]
    assert a["status_code"] == c["status_code"] == 201
    assert a["body"].keys() == {"id", "prompt_version", "status", "error_type", "error_message"}
    assert c["body"]["status"] == "ERROR"
    assert b == {"status_code": 400, "body": {"message": "model: Input should be a valid string"}}
    assert d["status_code"] == 400 and "NUL" in d["body"]["message"]
    assert stored(backend, a["body"]["id"])["tags"] == ["a"]
    assert stored(backend, c["body"]["id"])["error_message"] == "boom"


def test_log_request_batch_keys_dedupe_within_and_across_calls(backend: Backend) -> None:
    key = f"batch-dedupe-{time.time_ns()}"
    single = httpx.post(f"{backend.url}/log-request", json=log_body(),
                        headers={"X-API-KEY": API_KEY, "Idempotency-Key": key})
    entry = {"idempotency_key": key, "body": log_body(tags=["again"])}
    again = _batch(backend, {"requests": [entry, entry]}).json()["results"]
    assert {r["body"]["id"] for r in again} == {single.json()["id"]}
    count = backend.read(lambda c: c.scalar(
        sa.select(sa.func.count()).select_from(requests_table)
        .where(requests_table.c.idempotency_key == key)))
    assert count == 1


def test_log_request_batch_stores_a_mixed_batch_in_order(backend: Backend) -> None:
    """Keyed and unkeyed logs, a key used twice and a score, stored together, answered in
    order; the repeat of a key stores nothing (its tags are not added)."""
    key = f"batch-mixed-{time.time_ns()}"
    entries = [
        {"idempotency_key": f"{key}-a", "body": log_body(tags=["a", "b", "a"])},
        {"body": log_body(tags=["c"], model="m1")},
        {"idempotency_key": f"{key}-a", "body": log_body(tags=["z"])},
        {"body": log_body(model="m3")},
        {"idempotency_key": f"{key}-e", "body": log_body(score=70, score_name="helpful")},
    ]
    results = _batch(backend, {"requests": entries}).json()["results"]
    assert [r["status_code"] for r in results] == [201] * 5
    ids = [r["body"]["id"] for r in results]
    assert ids[0] == ids[2] and len(set(ids)) == 4
    assert [stored(backend, i)["tags"] for i in ids] == [["a", "b"], ["c"], ["a", "b"], [], []]
    assert [stored(backend, i)["model"] for i in ids[1:4:2]] == ["m1", "m3"]
    assert stored(backend, ids[4])["scores"] == {"helpful": 70}


@contextlib.contextmanager
def _refusing_model(backend: Backend, model: str) -> Iterator[None]:
    """The database itself refuses inserts of requests with `model` (a trigger)."""
    if backend.database == "postgresql":
        create = [
            "CREATE FUNCTION refuse_model() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.model = '{model}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_model BEFORE INSERT ON requests FOR EACH ROW "
            "EXECUTE FUNCTION refuse_model()",
        ]
        drop = ["DROP TRIGGER refuse_model ON requests", "DROP FUNCTION refuse_model()"]
    else:
        create = [
            "CREATE TRIGGER refuse_model BEFORE INSERT ON requests "
            f"WHEN NEW.model = '{model}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER refuse_model"]
    _execute(backend, create)
    try:
        yield
    finally:
        _execute(backend, drop)


def _execute(backend: Backend, statements: list[str]) -> None:
    with backend.store.engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def test_log_request_batch_a_log_the_database_refuses_leaves_the_others(
    backend: Backend,
) -> None:
    """The batch's one write fails, so each log is stored alone: the refused one answers a
    retryable 500, the others land; sent again, the others keep their ids."""
    key = f"batch-refused-{time.time_ns()}"
    entries = [{"idempotency_key": f"{key}-{n}", "body": log_body(model=model)}
               for n, model in enumerate(["ok", "refused-model", "ok"])]
    with _refusing_model(backend, "refused-model"):
        first = _batch(backend, {"requests": entries})
    assert first.status_code == 200
    results = first.json()["results"]
    assert [r["status_code"] for r in results] == [201, 500, 201]
    assert results[1]["body"] == {"message": "the log could not be stored"}
    again = _batch(backend, {"requests": entries}).json()["results"]
    assert [r["status_code"] for r in again] == [201, 201, 201]
    assert [again[0]["body"]["id"], again[2]["body"]["id"]] == [
        results[0]["body"]["id"], results[2]["body"]["id"]]
    assert stored(backend, again[1]["body"]["id"])["model"] == "refused-model"


def test_log_request_batch_refuses_a_bad_envelope_as_a_whole(backend: Backend) -> None:
    one = {"body": log_body()}
    for payload, fragment in [
        ([one], "JSON object"),
        ({}, "requests"),
        ({"requests": [{"idempotency_key": "", "body": log_body()}]}, "idempotency_key"),
        ({"requests": [one] * 1001}, "requests"),
    ]:
        response = _batch(backend, payload)
        assert response.status_code == 400, payload
        assert fragment in response.json()["message"]
    assert _batch(backend, {"requests": []}).json() == {"results": []}
    unauthorized = httpx.post(f"{backend.url}/log-request/batch", json={"requests": [one]})
    assert unauthorized.status_code == 401
