"""Release pages from the contract's dict shapes: arms, verdicts, history, chart, HTML."""

from __future__ import annotations

import re
from typing import Any

from app.backend.dashboard._release_views import release_view, releases_view
from app.backend.dashboard._render import make_environment
from app.backend.dashboard._score_chart import score_chart, series_points
from app.releases.judging import ArmData, judge_release

SPLIT: dict[str, Any] = {
    "template": "team/slogan",
    "label": "prod",
    "control": 3,
    "arms": [{"version": 3, "weight": 50}, {"version": 4, "weight": 50}],
    "segments": {"key": "plan", "values": {"pro": [{"version": 4, "weight": 100}]}},
    "guardrail": False,
    "alpha": 0.05,
    "started_at": "2025-05-01T10:00:00Z",
    "release_id": "r-1",
}


def _judgement() -> dict[str, Any]:
    control = ArmData(
        "v3",
        scores=[50.0, 60, 55, 52, 58] * 6,
        errors=[False] * 40,
        latencies_ms=[100.0] * 40,
        tokens=[10] * 40,
    )
    challenger = ArmData(
        "v4",
        scores=[80.0, 90, 85, 82, 88] * 6,
        errors=[False] * 39 + [True],
        latencies_ms=[120.0] * 40,
        tokens=[12] * 40,
    )
    [judged] = judge_release(control, [challenger])
    data = judged.to_dict()
    arms = [
        {**data["control"], "version": 3, "role": "control"},
        {**data["challenger"], "version": 4, "role": "challenger"},
    ]

    def points(base: float) -> list[dict[str, Any]]:
        return [
            {
                "at": f"2025-05-01T1{h}:00:00Z",
                "feedback": 5 * (h + 1),
                "mean": base + h,
                "interval": {"low": base + h - 5, "high": base + h + 5},
            }
            for h in range(4)
        ]

    return {
        "split": SPLIT,
        "arms": arms,
        "comparisons": [{**data, "version": 4}],
        "series": [
            {"version": 3, "role": "control", "points": points(55)},
            {"version": 4, "role": "challenger", "points": points(85)},
        ],
    }


HISTORY = [
    {
        "at": "2025-05-01T09:00:00Z",
        "template": "team/slogan",
        "label": "prod",
        "action": "move",
        "before": None,
        "after": {"version": 3},
        "by": "api key …ab12",
    },
    {
        "at": "2025-05-01T10:00:00Z",
        "template": "team/slogan",
        "label": "prod",
        "action": "split",
        "before": {"version": 3},
        "after": SPLIT,
        "by": "cli (…ab12)",
    },
]


def _view() -> dict[str, Any]:
    return release_view(
        template="team/slogan",
        label="prod",
        release={"split": SPLIT, "version": 3, "history": HISTORY},
        judgement=_judgement(),
        prompt_id=7,
    )


def test_arms_side_by_side_control_first_with_weights_and_verdicts() -> None:
    view = _view()
    assert [(a["version"], a["role"], a["weight"]) for a in view["arms"]] == [
        (3, "control", 50),
        (4, "challenger", 50),
    ]
    control, challenger = view["arms"]
    assert control["feedback"] == 30 and challenger["requests"] == 40
    assert challenger["verdict"] == "better" and control["verdict"] is None
    [comparison] = view["comparisons"]
    assert comparison["verdict"] == "better"
    assert comparison["explanation"].startswith("Better: v4 scores higher than v3")


def test_history_newest_first_in_words() -> None:
    rows = _view()["history"]
    assert [r["action_text"] for r in rows] == ["split set", "label moved"]
    assert rows[0]["before_text"] == "v3"
    assert rows[0]["after_text"].startswith("split v3 50 % (control) · v4 50 %")
    assert rows[1]["before_text"] == "none" and rows[1]["reason"] is None


def test_list_view_says_arms_in_words() -> None:
    [item] = releases_view([SPLIT])["releases"]
    assert item["arms_text"] == "v3 50 % (control) · v4 50 %"
    assert item["segments_text"] == "plan=pro: v4 100 %"


def test_chart_has_one_mean_path_and_band_per_arm() -> None:
    chart = score_chart(_judgement()["series"])
    assert not chart["empty"]
    assert [a["name"] for a in chart["arms"]] == ["v3", "v4"]
    for arm in chart["arms"]:
        assert arm["path"].startswith("M") and arm["path"].count("L") == 3
        assert len(arm["band"].split()) == 8
    ys = [d["y"] for a in chart["arms"] for d in a["dots"]]
    assert all(chart["top"] <= y <= chart["baseline"] for y in ys)
    # The higher-scoring arm is drawn higher up (smaller y).
    assert chart["arms"][1]["dots"][0]["y"] < chart["arms"][0]["dots"][0]["y"]


def test_chart_empty_and_single_point() -> None:
    assert score_chart([])["empty"]
    assert score_chart([{"version": 3, "points": []}])["empty"]
    one = score_chart([{"version": 3, "points": [{"at": "2025-05-01T10:00:00Z", "mean": 50}]}])
    assert not one["empty"] and one["arms"][0]["band"] == ""
    assert len(one["x_ticks"]) == 1


def test_series_points_accept_flat_intervals_and_skip_unknowns() -> None:
    found = series_points(
        [
            {"at": "2025-05-01T10:00:00", "mean_score": 40, "low": 30, "high": 50, "n": 3},
            {"at": None, "mean": 10},
            {"at": "2025-05-01T09:00:00Z", "mean": None},
        ]
    )
    assert len(found) == 1 and (found[0].low, found[0].high, found[0].feedback) == (30, 50, 3)


def _render(name: str, **context: Any) -> str:
    page = {
        "base": "/dashboard",
        "api": "/api",
        "path": "/",
        "query": "",
        "error": None,
        "session_csrf": "tok",
        **context,
    }
    return make_environment().get_template(name).render(page)


def test_release_page_renders_arms_chart_verdict_and_forms() -> None:
    view = _view()
    html = _render("release.html", data=view, chart=score_chart(view["series"]))
    assert html.count('class="mean"') == 2 and "<polygon" in html
    assert "Better: v4 scores higher than v3" in html
    assert 'action="/dashboard/releases/team/slogan/prod/promote"' in html
    assert 'href="/api/releases/team/slogan/prod"' in html
    assert len(re.findall(r'name="csrf" value="tok"', html)) >= 4  # promote, rollback, end, out
    assert "<script" not in html


def test_release_page_of_a_plain_label() -> None:
    view = release_view(
        template="x",
        label="prod",
        release={"split": None, "version": 2, "history": []},
        judgement=None,
        prompt_id=None,
    )
    html = _render("release.html", data=view, chart=score_chart(view["series"]))
    assert "Not split" in html and "points at v2" in html and "/promote" not in html


def test_releases_list_renders() -> None:
    html = _render("releases.html", data=releases_view([SPLIT]))
    assert 'href="/dashboard/releases/team/slogan/prod"' in html
    assert "v3 50 % (control) · v4 50 %" in html
    assert "No label is split" in _render("releases.html", data=releases_view([]))
