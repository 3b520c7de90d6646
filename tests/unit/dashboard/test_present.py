"""Conversations from every stored shape, diffs, chart geometry and filter parsing."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from app.backend.dashboard._filters import parse_filters
from app.backend.dashboard._present import bar_chart, conversation, unified_diff
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
