"""The copied hosted LogRequest schema, and fitting a log body to it (`_hosted_schema`)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from promptserve.tracing import _hosted_schema as hosted

_VALIDATOR = jsonschema.Draft202012Validator(hosted.log_request_schema())

# The "success" example of POST /log-request in the hosted OpenAPI.
EXAMPLE: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-4o",
    "api_type": "chat-completions",
    "input": {"type": "chat", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Hello!"}]}]},
    "output": {"type": "chat", "messages": [
        {"role": "assistant", "content": [{"type": "text", "text": "Hi there!"}]}]},
    "request_start_time": "2024-01-15T10:30:00Z",
    "request_end_time": "2024-01-15T10:30:05Z",
    "tags": ["production"],
    "metadata": {"session_id": "abc123"},
}


def _strict_problems(body: dict[str, Any]) -> list[str]:
    """python-jsonschema's view (times as given: no leniency)."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in _VALIDATOR.iter_errors(body)]


def test_the_copy_is_a_complete_json_schema() -> None:
    schema = hosted.log_request_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    text = json.dumps(schema)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}
    assert refs <= set(schema["$defs"]), refs - set(schema["$defs"])
    log_request = schema["$defs"]["LogRequest"]
    assert log_request["required"] == ["provider", "model", "input", "output",
                                       "request_start_time", "request_end_time"]
    assert log_request["properties"]["tags"]["items"]["maxLength"] == 512
    assert {"text", "thinking", "image_url", "media"} <= hosted.content_types()
    assert not {"refusal", "file", "audio", "redacted_thinking", "image"} & (
        hosted.content_types())


def test_the_published_example_fits() -> None:
    assert _strict_problems(EXAMPLE) == []
    assert hosted.problems(EXAMPLE) == []
    assert hosted.fit(EXAMPLE) == hosted.Fitted(EXAMPLE, ())


def test_what_the_hosted_schema_refuses() -> None:
    """The parts the issue names are refused by the copy, in both implementations."""
    refused = [
        {"type": "refusal", "refusal": "no"},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "redacted_thinking", "data": "x"},
        {"type": "image_url", "image_url": {"file_id": "file-2"}},
    ]
    for block in refused:
        body = copy.deepcopy(EXAMPLE)
        body["input"]["messages"][0]["content"].append(block)
        assert _strict_problems(body) and hosted.problems(body), block
    anthropic_tool = {"name": "f", "input_schema": {"type": "object"}}
    assert _strict_problems({**EXAMPLE, "input": {**EXAMPLE["input"],
                                                  "tools": [anthropic_tool]}})
    assert _strict_problems({**EXAMPLE, "tags": ["x" * 513]})
    assert _strict_problems({**EXAMPLE, "request_start_time": 1_700_000_000.5})


def _fit(**changes: Any) -> hosted.Fitted:
    body = {**copy.deepcopy(EXAMPLE), **changes}
    original = copy.deepcopy(body)
    fitted = hosted.fit(body)
    assert body == original  # never modified
    times = {k: datetime.fromtimestamp(v, UTC).isoformat() for k, v in fitted.body.items()
             if k.endswith("_time") and isinstance(v, int | float)}
    assert _strict_problems({**fitted.body, **times}) == []
    return fitted


def test_fit_removes_blocks_and_tools_it_lacks_and_names_them() -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "audio", "base64": "UklG"},
        {"type": "image_url", "image_url": {"file_id": "file-1"}}]}]
    tools = [{"type": "function", "function": {"name": "ok"}},
             {"name": "anthropic", "input_schema": {}}]
    fitted = _fit(input={"type": "chat", "messages": messages, "tools": tools,
                         "tool_choice": {"type": "tool", "name": "ok"}})
    assert fitted.body["input"] == {"type": "chat", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "look"}]}],
        "tools": [{"type": "function", "function": {"name": "ok"}}]}
    assert fitted.removed[0] == (
        "input.messages[0].content[1]: type 'audio' is not one the hosted schema accepts")
    assert fitted.removed[1].startswith("input.messages[0].content[2]: image_url: url")
    assert fitted.removed[2].startswith("input.tools[1]: ")
    assert fitted.removed[3].startswith("input.tool_choice: ")
    assert len(fitted.removed) == 4


def test_fit_cuts_tags_and_drops_fields_that_do_not_fit() -> None:
    fitted = _fit(tags=["ok", "t" * 600], metadata={"k": 1, "j": "v"}, status="FINE",
                  error_type="OutputSchemaError", score=500, input_tokens=-3,
                  error_message="e" * 2000, api_key="kept: not a schema field")
    assert fitted.body["tags"] == ["ok", "t" * 512]
    assert fitted.body["metadata"] == {"j": "v"}
    assert fitted.body["error_message"] == "e" * 1024
    assert fitted.body["api_key"] == "kept: not a schema field"
    for key in ("status", "error_type", "score", "input_tokens"):
        assert key not in fitted.body
    assert [note.split(":")[0] for note in fitted.removed] == [
        "tags[1]", "metadata.k", "status", "error_type", "score", "input_tokens",
        "error_message"]


def test_an_input_that_cannot_fit_is_stored_empty() -> None:
    fitted = _fit(input={}, output={"type": "chat", "messages": "hello"})
    assert fitted.body["input"] == {"type": "completion", "content": [], "input_variables": []}
    assert fitted.body["output"] == {"type": "chat", "messages": [], "input_variables": []}
    assert [note.split(":")[0] for note in fitted.removed] == [
        "input (stored empty)", "output (stored empty)"]


def test_epoch_times_are_taken_as_the_sdk_sends_them() -> None:
    fitted = _fit(request_start_time=1_700_000_000.5, request_end_time=1_700_000_001)
    assert fitted.removed == ()
    assert (fitted.body["request_start_time"], fitted.body["request_end_time"]) == (
        1_700_000_000.5, 1_700_000_001)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"provider": None}, "provider: "),
        ({"model": 7}, "model: "),
        ({"request_start_time": 1e300}, "request_start_time: "),
        ({"request_end_time": True}, "request_end_time: "),
    ],
)
def test_a_log_without_what_it_cannot_do_without_is_unfit(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(hosted.Unfit, match=f"^{reason}"):
        hosted.fit({**EXAMPLE, **changes})


def test_missing_fields_are_named_together() -> None:
    with pytest.raises(hosted.Unfit, match="^provider, input, output, request_start_time, "
                                           "request_end_time are missing$"):
        hosted.fit({"model": "m"})
    with pytest.raises(hosted.Unfit, match="JSON object"):
        hosted.fit(["not", "a", "log"])


def test_problems_say_where() -> None:
    body = {**EXAMPLE, "tags": ["x" * 513], "metadata": {"n": 1}}
    assert [p.split(":")[0] for p in hosted.problems(body)] == ["tags[0]", "metadata.n"]
