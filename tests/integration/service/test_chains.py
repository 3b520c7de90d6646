"""The shipped multi-step chains (/critique, /extract, /tools) on every LangServe endpoint, over
raw HTTP and with stock RemoteRunnable: answers, ids of every call, per-call prompt links."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.service.conftest import Service
from tests.integration.service.test_streams import _events
from tests.utils.polling import eventually
from tests.utils.remote import aremote_runnable, remote_runnable

SLOGAN = "echo: Write a slogan for toasters."
CRITIQUE = f"echo: Critique this slogan: {SLOGAN}"
TEXT = "Ada Lovelace writes wonderful code, a positive surprise"
QUESTION = "What is 6 times 7?"

# chain → (input, expected output, prompts in call order)
CASES: dict[str, tuple[dict[str, Any], Any, list[str]]] = {
    "critique": ({"product": "toasters"}, {"slogan": SLOGAN, "critique": CRITIQUE},
                 ["slogan", "critique"]),
    "extract": ({"text": TEXT}, {"name": TEXT, "sentiment": "positive"}, ["extract"]),
    "tools": ({"question": QUESTION}, "result: 42.0", ["assistant", "assistant"]),
}


def _check_run(service: Service, summary: dict[str, Any], chain: str, endpoint: str) -> None:
    """The run's ids: one per LLM call, each stored, linked to its own prompt, one group."""
    _, _, prompts = CASES[chain]
    ids = summary["promptlayer_request_ids"]
    assert len(ids) == len(prompts) and all(isinstance(i, int) for i in ids)
    assert summary["promptlayer_request_id"] == ids[-1]
    assert summary["promptlayer_prompt_versions"] == {name: 1 for name in prompts}
    assert summary["feedback_token"]
    for request_id, prompt in zip(ids, prompts, strict=True):
        stored = service.stored_request(request_id)
        assert service.linked_prompt(request_id) == (prompt, 1)
        assert {f"route:/{chain}", f"endpoint:{endpoint}", f"chain:{chain}", f"prompt:{prompt}",
                "prompt_version:1", "prompt_label:prod"} <= set(stored["tags"])
        others = {f"prompt:{p}" for p in prompts if p != prompt}
        assert not others & set(stored["tags"])
        assert stored["status"] == "SUCCESS"
    if len(ids) > 1:
        groups = eventually(lambda: _groups(service, ids))
        assert len(groups) == 1


def _groups(service: Service, ids: list[int]) -> set[int] | None:
    groups = {service.stored_request(i)["group_id"] for i in ids}
    return None if None in groups else groups


@pytest.mark.parametrize("chain", sorted(CASES))
def test_invoke(service: Service, chain: str) -> None:
    given, expected, _ = CASES[chain]
    response = httpx.post(f"{service.url}/{chain}/invoke", json={"input": given}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == expected
    assert response.headers["x-promptlayer-request-id"] == str(
        body["metadata"]["promptlayer_request_id"])
    _check_run(service, body["metadata"], chain, "invoke")


@pytest.mark.parametrize("chain", sorted(CASES))
def test_batch(service: Service, chain: str) -> None:
    given, expected, _ = CASES[chain]
    response = httpx.post(f"{service.url}/{chain}/batch", json={"inputs": [given, given]},
                          timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == [expected, expected]
    runs = body["metadata"]["responses"]
    assert len({run["run_id"] for run in runs}) == 2
    for run in runs:
        _check_run(service, run, chain, "batch")


@pytest.mark.parametrize("chain", sorted(CASES))
def test_stream(service: Service, chain: str) -> None:
    given, expected, _ = CASES[chain]
    events = _events(f"{service.url}/{chain}/stream", {"input": given})
    assert [name for name, _ in events][-2:] == ["metadata", "end"]
    chunks = [json.loads(data) for name, data in events if name == "data"]
    assert _joined(chunks) == expected
    _check_run(service, json.loads(events[-2][1]), chain, "stream")


@pytest.mark.parametrize("chain", sorted(CASES))
def test_stream_log(service: Service, chain: str) -> None:
    given, _, _ = CASES[chain]
    events = _events(f"{service.url}/{chain}/stream_log", {"input": given})
    assert events[-1][0] == "end"
    patch = json.loads(events[-2][1])["ops"][0]
    assert patch["path"] == "/promptlayer"
    _check_run(service, patch["value"], chain, "stream_log")


@pytest.mark.parametrize("chain", sorted(CASES))
def test_stream_events(service: Service, chain: str) -> None:
    given, _, prompts = CASES[chain]
    events = _events(f"{service.url}/{chain}/stream_events", {"input": given})
    assert events[-1][0] == "end"
    decoded = [json.loads(data) for name, data in events[:-1] if name == "data"]
    assert sum(e["event"] == "on_chat_model_end" for e in decoded) == len(prompts)
    last = decoded[-1]
    assert last["event"] == "on_custom_event" and last["name"] == "promptlayer"
    _check_run(service, last["data"], chain, "stream_events")


@pytest.mark.parametrize("chain", sorted(CASES))
def test_remote_runnable(service: Service, chain: str) -> None:
    given, expected, _ = CASES[chain]
    with remote_runnable(f"{service.url}/{chain}/") as remote:
        assert remote.invoke(given) == expected
        assert remote.batch([given]) == [expected]
        assert _joined(list(remote.stream(given))) == expected


@pytest.mark.parametrize("chain", sorted(CASES))
async def test_remote_runnable_async(service: Service, chain: str) -> None:
    given, expected, _ = CASES[chain]
    async with aremote_runnable(f"{service.url}/{chain}/") as remote:
        assert await remote.ainvoke(given) == expected
        assert _joined([c async for c in remote.astream(given)]) == expected


@pytest.mark.parametrize("chain", sorted(CASES))
def test_schemas_and_playground(service: Service, chain: str) -> None:
    given, _, _ = CASES[chain]
    schema = httpx.get(f"{service.url}/{chain}/input_schema").json()
    assert set(schema["required"]) == set(given)
    assert httpx.get(f"{service.url}/{chain}/output_schema").status_code == 200
    playground = httpx.get(f"{service.url}/{chain}/playground/index.html")
    assert playground.status_code == 200 and "<html" in playground.text.lower()


def test_critique_links_each_call_to_its_variables(service: Service) -> None:
    response = httpx.post(f"{service.url}/critique/invoke", json={"input": {"product": "kites"}})
    first, second = response.json()["metadata"]["promptlayer_request_ids"]
    slogan = "echo: Write a slogan for kites."
    assert service.stored_request(first)["prompt_input_variables"] == {"product": "kites"}
    assert service.stored_request(second)["prompt_input_variables"] == {"slogan": slogan}


def test_tools_logs_the_tool_call_then_the_tool_message(service: Service) -> None:
    response = httpx.post(f"{service.url}/tools/invoke", json={"input": {"question": QUESTION}})
    first, second = response.json()["metadata"]["promptlayer_request_ids"]
    call = service.stored_request(first)["output"]["messages"][-1]
    assert call["tool_calls"][0]["function"]["name"] == "multiply"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"a": 6, "b": 7}
    sent = service.stored_request(second)["input"]["messages"]
    tool_message = sent[-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "42" in json.dumps(tool_message["content"])
    assert sent[-2]["tool_calls"][0]["id"] == call["tool_calls"][0]["id"]


def test_extract_refuses_an_input_without_text(service: Service) -> None:
    response = httpx.post(f"{service.url}/extract/invoke", json={"input": {"txt": "x"}})
    assert response.status_code == 422


def test_misfit_answer_is_502_and_logged_as_an_error(service: Service) -> None:
    before = _misfit_rows(service)
    response = httpx.post(f"{service.url}/extract_misfit/invoke",
                          json={"input": {"text": TEXT}}, timeout=30)
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["prompt"] == "extract_misfit" and body["version"] == 1
    assert "does not fit" in body["detail"]
    rows = eventually(lambda: _misfit_rows(service) if len(_misfit_rows(service)) > len(before)
                      else None)
    newest = service.stored_request(max(rows))
    assert newest["status"] == "ERROR" and newest["error_type"] == "UNKNOWN_ERROR"
    assert newest["error_message"].startswith("OutputSchemaError: ")
    assert "does not fit the schema" in newest["error_message"]


def test_misfit_stream_ends_with_a_502_error_event(service: Service) -> None:
    events = _events(f"{service.url}/extract_misfit/stream", {"input": {"text": TEXT}})
    errors = [json.loads(data) for name, data in events if name == "error"]
    assert errors and errors[0]["status_code"] == 502
    assert errors[0]["prompt"] == "extract_misfit"


def test_misfit_batch_is_502(service: Service) -> None:
    response = httpx.post(f"{service.url}/extract_misfit/batch",
                          json={"inputs": [{"text": TEXT}]}, timeout=30)
    assert response.status_code == 502, response.text


def _misfit_rows(service: Service) -> list[int]:
    with service.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT r.id FROM requests r JOIN request_tags t ON t.request_id = r.id "
            "WHERE t.tag = 'prompt:extract_misfit'"
        ).all()
    return [row[0] for row in rows]


def _joined(chunks: list[Any]) -> Any:
    """Stream chunks added up as LangChain adds them (strings concatenate, dicts merge)."""
    if all(isinstance(chunk, str) for chunk in chunks):
        return "".join(chunks)
    merged: dict[str, Any] = {}
    for chunk in chunks:
        for key, value in chunk.items():
            merged[key] = merged.get(key, "") + value if isinstance(value, str) else value
    return merged
