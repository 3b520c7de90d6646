"""Conversations from every stored shape, diffs, chart geometry and filter parsing."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from app.backend.dashboard._filters import parse_filters
from app.backend.dashboard._present import (
    bar_chart,
    conversation,
    excerpt,
    ordered_tags,
    unified_diff,
)
from app.backend.errors import BadRequest


def test_conversation_from_openai_kwargs_and_response() -> None:
    kwargs = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}]}
    response = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [1]}}]}
    turns = conversation(kwargs, response)
    assert [(t["role"], t["text"], t["side"]) for t in turns] == [
        ("system", "Be brief.", "input"),
        ("assistant", "", "output"),
    ]
    assert turns[1]["extra"] == {"tool_calls": [1]}


def test_conversation_falls_back_to_json_text() -> None:
    turns = conversation([1, 2], "plain")
    assert [t["role"] for t in turns] == ["input", "output"]
    assert turns[1]["text"] == '"plain"'


def test_unified_diff_kinds() -> None:
    lines = unified_diff("a\nb", "a\nc", old_name="x@1", new_name="x@2")
    assert [line["kind"] for line in lines] == [
        "file",
        "file",
        "hunk",
        "context",
        "removed",
        "added",
    ]


def test_bar_chart_scales_to_the_maximum_and_marks_empty() -> None:
    chart = bar_chart([("v1", 50.0), ("v2", None), ("v3", 100.0)], maximum=100)
    heights = [bar["h"] for bar in chart["bars"]]
    assert heights[1] == 0 and heights[2] == pytest.approx(2 * heights[0])
    assert not chart["empty"]
    assert bar_chart([("a", 0), ("b", None)])["empty"]


def test_filters_parse_and_round_trip() -> None:
    filters = parse_filters(QueryParams("route=/x&tag=a&tag=b&status=error&score_min=5&limit=20"))
    assert filters.all_tags() == ["a", "b", "route:/x"]
    assert filters.status == "ERROR"
    assert parse_filters(QueryParams(filters.as_params())) == filters


@pytest.mark.parametrize(
    "query", ["limit=0", "before=1&after=2", "score_max=-1", "q=" + "x" * 201, "until=nope"]
)
def test_filters_refuse_bad_values(query: str) -> None:
    with pytest.raises(BadRequest):
        parse_filters(QueryParams(query))


def test_excerpts_are_the_last_user_turn_and_the_first_answer_on_one_line() -> None:
    chat = {"type": "chat", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Name a  slogan\nfor toasters"}]},
    ]}
    answer = {"type": "chat", "messages": [
        {"role": "assistant", "content": [{"type": "text", "text": "x" * 200}]}]}
    assert excerpt(chat, side="input") == "Name a slogan for toasters"
    out = excerpt(answer, side="output")
    assert len(out) == 80 and out.endswith("…")
    calls = {"type": "chat", "messages": [{"role": "assistant", "content": [], "tool_calls": [
        {"type": "function", "function": {"name": "multiply", "arguments": "{}"}}]}]}
    assert excerpt(calls, side="output") == "[tool call: multiply]"
    assert excerpt({"type": "completion", "content": "once upon"}, side="input") == "once upon"
    assert excerpt("not a blueprint", side="input") == ""


def test_tags_follow_the_documented_order_then_the_rest_alphabetically() -> None:
    stored = ["zeta", "prompt_version:3", "chain:example", "endpoint:invoke", "alpha",
              "prompt:example", "route:/example", "prompt_label:prod", "arm:v3",
              "release:prod", "other:x"]
    assert ordered_tags(stored) == [
        "route:/example", "endpoint:invoke", "chain:example", "prompt:example",
        "prompt_version:3", "prompt_label:prod", "release:prod", "arm:v3", "alpha",
        "other:x", "zeta"]
