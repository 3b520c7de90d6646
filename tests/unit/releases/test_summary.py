"""Per-arm summaries against values computed by hand, and the edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.releases.judging import ArmData, Interval, summarize


def _json(value: object) -> str:
    # allow_nan=False: a NaN or an infinity anywhere in a summary fails here.
    return json.dumps(value, allow_nan=False)


def test_summary_matches_hand_computed_values() -> None:
    arm = ArmData(
        name="v3",
        scores=[40, 50, 60, 70],
        errors=[True, False, False, False, False, True, False, False, False, False],
        latencies_ms=[100, 200, 300, 400, 500],
        tokens=[10, 20, 30],
    )

    summary = summarize(arm)

    assert summary.name == "v3"
    assert summary.requests == 10
    assert summary.errors == 2
    assert summary.error_rate == pytest.approx(0.2)
    # Wilson, z = 1.959964: centre (0.2 + z^2/20) / (1 + z^2/10), half
    # z / (1 + z^2/10) * sqrt(0.016 + z^2/400).
    assert summary.error_rate_interval is not None
    assert summary.error_rate_interval.low == pytest.approx(0.056682, abs=1e-6)
    assert summary.error_rate_interval.high == pytest.approx(0.509838, abs=1e-6)
    assert summary.feedback == 4
    assert summary.mean_score == pytest.approx(55.0)
    # sd = sqrt(500/3) = 12.909944; t(0.975, 3) = 3.182446; half = 3.182446 * sd / 2.
    assert summary.score_sd == pytest.approx(math.sqrt(500 / 3))
    assert summary.mean_score_interval is not None
    assert summary.mean_score_interval.low == pytest.approx(55 - 20.542603, abs=1e-5)
    assert summary.mean_score_interval.high == pytest.approx(55 + 20.542603, abs=1e-5)
    # numpy's linear percentiles: p95 sits 0.8 of the way from 400 to 500.
    assert summary.latency_p50_ms == pytest.approx(300.0)
    assert summary.latency_p95_ms == pytest.approx(480.0)
    assert summary.tokens_total == 60
    assert summary.tokens_mean == pytest.approx(20.0)
    assert summary.confidence == 0.95


def test_to_dict_is_plain_json() -> None:
    summary = summarize(ArmData("v3", scores=[10, 90], errors=[False, True], tokens=[7]))
    data = json.loads(_json(summary.to_dict()))
    assert data["mean_score"] == 50.0
    assert data["mean_score_interval"] == {"low": 0.0, "high": 100.0}  # clipped to the scale
    assert data["error_rate"] == 0.5
    assert data["tokens_total"] == 7
    assert data["latency_p50_ms"] is None


def test_no_data_at_all() -> None:
    summary = summarize(ArmData("empty"))
    assert summary.requests == summary.errors == summary.feedback == summary.tokens_total == 0
    for field in (
        "error_rate",
        "error_rate_interval",
        "mean_score",
        "mean_score_interval",
        "score_sd",
        "latency_p50_ms",
        "latency_p95_ms",
        "tokens_mean",
    ):
        assert getattr(summary, field) is None, field
    _json(summary.to_dict())


def test_one_score_has_a_mean_but_no_interval() -> None:
    summary = summarize(ArmData("one", scores=[73.5], errors=[False], latencies_ms=[12.0]))
    assert summary.mean_score == 73.5
    assert summary.mean_score_interval is None
    assert summary.score_sd is None
    assert summary.latency_p50_ms == summary.latency_p95_ms == 12.0
    assert summary.error_rate == 0.0
    assert summary.error_rate_interval is not None
    assert summary.error_rate_interval.low == 0.0
    _json(summary.to_dict())


def test_all_equal_scores_give_a_zero_width_interval() -> None:
    summary = summarize(ArmData("flat", scores=[80.0] * 25))
    assert summary.mean_score == 80.0
    assert summary.score_sd == 0.0
    assert summary.mean_score_interval == Interval(80.0, 80.0)
    _json(summary.to_dict())


def test_all_requests_failed() -> None:
    summary = summarize(ArmData("down", errors=[True] * 8))
    assert summary.error_rate == 1.0
    interval = summary.error_rate_interval
    assert interval is not None
    assert interval.high == 1.0
    assert 0.6 < interval.low < 0.7  # Wilson 8/8: 0.6756


def test_huge_arm() -> None:
    rng = np.random.default_rng(3)
    n = 2_000_000
    scores = rng.uniform(0, 100, n)
    summary = summarize(
        ArmData("big", scores=scores, errors=rng.random(n) < 0.01, latencies_ms=rng.gamma(2, 50, n))
    )
    assert summary.feedback == summary.requests == n
    assert summary.mean_score == pytest.approx(50.0, abs=0.1)
    interval = summary.mean_score_interval
    assert interval is not None
    # sd 100/sqrt(12) = 28.87: half-width 1.96 * 28.87 / sqrt(n) = 0.040.
    assert interval.high - interval.low == pytest.approx(2 * 0.040, rel=0.02)
    assert summary.error_rate == pytest.approx(0.01, abs=0.001)
    _json(summary.to_dict())


@pytest.mark.parametrize("bad", [[50.0, float("nan")], [101.0], [-0.5], [float("inf")]])
def test_scores_off_the_scale_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="scores"):
        summarize(ArmData("bad", scores=bad))


def test_bad_measures_are_refused() -> None:
    with pytest.raises(ValueError, match="latencies"):
        summarize(ArmData("bad", latencies_ms=[-1.0]))
    with pytest.raises(ValueError, match="token"):
        summarize(ArmData("bad", tokens=[-3]))
    with pytest.raises(ValueError, match="confidence"):
        summarize(ArmData("bad"), confidence=1.0)


def test_other_confidence_levels() -> None:
    summary = summarize(ArmData("v", scores=[40, 50, 60, 70]), confidence=0.9)
    # t(0.95, 3) = 2.353363.
    interval = summary.mean_score_interval
    assert interval is not None
    assert interval.high - 55 == pytest.approx(2.353363 * math.sqrt(500 / 3) / 2, abs=1e-5)
