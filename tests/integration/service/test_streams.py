"""The three stream endpoints: LangServe's protocol, plus one id event right before `end`."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.integration.service.conftest import Service
from tests.utils.remote import aremote_runnable


def _events(url: str, body: dict) -> list[tuple[str, str]]:
    """Raw SSE events (event, data) of one POST."""
    events: list[tuple[str, str]] = []
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        assert response.status_code == 200
        event, data = "message", []
        try:
            for line in response.iter_lines():
                if line == "":
                    if data or event != "message":
                        events.append((event, "\n".join(data)))
                    event, data = "message", []
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
        except httpx.RemoteProtocolError:
            # LangServe re-raises after its error event, so the server cuts the response.
            events.append(("<connection closed>", ""))
    return events


def _assert_ids(summary: dict, service: Service, endpoint: str) -> None:
    request_id = summary["promptlayer_request_id"]
    assert isinstance(request_id, int)
    assert summary["promptlayer_request_ids"] == [request_id]
    assert summary["feedback_token"] and summary["run_id"]
    stored = service.stored_request(request_id)
    assert f"endpoint:{endpoint}" in stored["tags"]
    assert stored["output_tokens"] > 0  # streamed runs report usage too


def test_stream_ends_with_a_metadata_event_carrying_the_ids(service: Service) -> None:
    events = _events(f"{service.url}/example/stream", {"input": {"product": "toasters"}})
    names = [name for name, _ in events]
    assert names[0] == "metadata" and names[-1] == "end" and names[-2] == "metadata"
    data_chunks = [json.loads(data) for name, data in events if name == "data"]
    assert len(data_chunks) > 1
    assert "".join(data_chunks).endswith("makes toasters.")
    _assert_ids(json.loads(events[-2][1]), service, "stream")


def test_stream_events_ends_with_a_promptlayer_custom_event(service: Service) -> None:
    events = _events(f"{service.url}/example/stream_events", {"input": {"product": "toasters"}})
    assert events[-1][0] == "end"
    name, data = events[-2]
    assert name == "data"
    event = json.loads(data)
    assert event["event"] == "on_custom_event" and event["name"] == "promptlayer"
    _assert_ids(event["data"], service, "stream_events")


def test_stream_log_ends_with_a_patch_adding_promptlayer(service: Service) -> None:
    events = _events(f"{service.url}/example/stream_log", {"input": {"product": "toasters"}})
    assert events[-1][0] == "end"
    name, data = events[-2]
    assert name == "data"
    ops = json.loads(data)["ops"]
    assert ops == [{"op": "add", "path": "/promptlayer", "value": ops[0]["value"]}]
    _assert_ids(ops[0]["value"], service, "stream_log")


async def test_stock_remote_runnable_streams_pass_the_id_event_quietly(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{service.url}/example/"
    with caplog.at_level(logging.INFO):
        async with aremote_runnable(url) as remote:
            chunks = [chunk async for chunk in remote.astream({"product": "toasters"})]
            events = [e async for e in remote.astream_events({"product": "toasters"})]
            patches = [p async for p in remote.astream_log({"product": "toasters"})]
    assert "".join(chunks).endswith("makes toasters.")
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == ["promptlayer"]
    assert isinstance(custom[0]["data"]["promptlayer_request_id"], int)
    final_state = patches[0]
    for patch in patches[1:]:
        final_state = final_state + patch
    assert isinstance(final_state.state["promptlayer"]["promptlayer_request_id"], int)
    assert not [r for r in caplog.records if r.name.startswith("langserve")]


def test_a_failing_stream_keeps_langserve_error_event(service: Service) -> None:
    events = _events(f"{service.url}/failing/stream", {"input": {"product": "x"}})
    names = [name for name, _ in events]
    # LangServe ends a failed stream with its error event, then drops the connection
    # (it re-raises); no `end`, and nothing of ours follows.
    assert names[-2:] == ["error", "<connection closed>"]
    assert json.loads(events[-2][1]) == {"status_code": 500, "message": "Internal Server Error"}
