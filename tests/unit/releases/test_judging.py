"""The verdict between a challenger and the control: its formulas, its looks, its words.

The simulations that check its error rate and its speed are in test_simulation.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.releases import _sequential
from app.releases.judging import (
    ArmData,
    Comparison,
    Interval,
    ScoreCounts,
    Verdict,
    compare,
    explain,
    judge,
    judge_release,
)


def _alternating(mean: float, n: int, spread: float = 10.0) -> list[float]:
    """mean - spread, mean + spread, ...: an exact mean and sd for every even n."""
    return [mean + spread if i % 2 == 0 else mean - spread for i in range(n)]


def _roundtrip(comparison: Comparison) -> Comparison:
    return Comparison.from_dict(json.loads(json.dumps(comparison.to_dict(), allow_nan=False)))


def test_interval_and_p_value_follow_the_mixture_formula() -> None:
    control, challenger = _alternating(50, 40), _alternating(58, 60, spread=20)
    result = compare(control, challenger, alpha=0.05, mixture_sd=10.0)

    # By hand: each arm's variance counts a pseudo-score at 0 and one at 100.
    v_c = (40 * 100 + 5000 + 40 * 2 / 42 * 0**2) / 41
    v_t = (60 * 400 + 5000 + 60 * 2 / 62 * 8**2) / 61
    welch = v_c / 40 + v_t / 60
    pooled_mean = (40 * 50 + 60 * 58) / 100
    pooled_ss = 40 * 100 + 60 * 400 + 40 * 60 / 100 * 8**2
    v_p = (pooled_ss + 5000 + 100 * 2 / 102 * (pooled_mean - 50) ** 2) / 101
    se2 = max(welch, v_p * (1 / 40 + 1 / 60))
    r = 100 / se2
    half = math.sqrt(se2 * (1 + 1 / r) * (math.log(1 + r) + 2 * math.log(20)))
    log_lambda = 8**2 / (2 * se2) * r / (1 + r) - 0.5 * math.log(1 + r)

    assert result.difference == pytest.approx(8.0)
    assert result.interval is not None
    assert result.interval.low == pytest.approx(8 - half)
    assert result.interval.high == pytest.approx(8 + half)
    assert result.p_value == pytest.approx(min(1.0, math.exp(-log_lambda)))
    assert result.scores == ScoreCounts(40, 60)


def test_p_value_and_interval_agree_on_the_verdict() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        shift = rng.uniform(-15, 15)
        n_c, n_t = (int(n) for n in rng.integers(10, 300, 2))
        control = np.clip(rng.normal(50, 20, n_c), 0, 100)
        challenger = np.clip(rng.normal(50 + shift, 20, n_t), 0, 100)
        result = compare(control, challenger, alpha=0.05)
        assert result.interval is not None
        excludes_zero = not result.interval.contains(0.0)
        assert (result.p_value <= 0.05) == excludes_zero
        assert (result.verdict is not Verdict.NOT_YET_KNOWN) == excludes_zero


def test_clear_winner_and_clear_loser() -> None:
    better = compare(_alternating(40, 200), _alternating(60, 200))
    assert better.verdict is Verdict.BETTER
    assert better.decided_at == ScoreCounts(200, 200)
    assert better.further_scores == ScoreCounts(0, 0)
    worse = compare(_alternating(60, 200), _alternating(40, 200))
    assert worse.verdict is Verdict.WORSE
    assert worse.interval is not None and worse.interval.high < 0


def test_too_few_scores_is_not_yet_known() -> None:
    for control, challenger in [([], []), ([50.0], []), ([], [50.0]), ([10.0] * 9, [90.0] * 50)]:
        result = compare(control, challenger)
        assert result.verdict is Verdict.NOT_YET_KNOWN
        assert result.interval is None
        assert result.p_value == 1.0
        assert result.further_scores is None
        _roundtrip(result)
    assert compare([], [50.0]).difference is None
    assert compare([10.0] * 9, [90.0] * 50).difference == pytest.approx(80.0)


def test_zero_variance_arms_stay_finite() -> None:
    same = compare([70.0] * 30, [70.0] * 30)
    assert same.difference == 0.0
    assert same.verdict is Verdict.NOT_YET_KNOWN
    assert same.further_scores is None  # no difference: no number of scores will show one
    assert same.interval is not None
    assert math.isfinite(same.interval.low) and same.interval.low < 0 < same.interval.high
    # Twenty identical scores a side do not make ten points certain...
    early = compare([50.0] * 12, [60.0] * 12)
    assert early.verdict is Verdict.NOT_YET_KNOWN
    # ...a hundred a side do.
    assert compare([50.0] * 100, [60.0] * 100).verdict is Verdict.BETTER
    for result in (same, early):
        json.dumps(result.to_dict(), allow_nan=False)


def test_huge_arms() -> None:
    rng = np.random.default_rng(5)
    n = 1_000_000
    control = rng.uniform(0, 100, n)
    challenger = rng.uniform(0, 100, n)
    result = compare(control, challenger)
    assert result.interval is not None
    assert result.interval.high - result.interval.low < 1.0
    assert result.verdict is Verdict.NOT_YET_KNOWN
    json.dumps(result.to_dict(), allow_nan=False)
    shifted = compare(control, np.minimum(challenger + 0.5, 100.0))
    assert shifted.verdict is Verdict.BETTER


def test_running_intersection_keeps_the_verdict() -> None:
    # 56 scores a side, 8 points apart: the first look at which the interval clears 0.
    control = _alternating(50, 56)
    challenger = _alternating(58, 56)
    first = compare(control, challenger)
    assert first.verdict is Verdict.BETTER and first.interval is not None
    assert compare(control[:-2], challenger[:-2]).verdict is Verdict.NOT_YET_KNOWN
    # Then the arms come out level for a while: alone, the new look would not say "better".
    later_c = control + _alternating(50, 40)
    later_t = challenger + _alternating(50, 40)
    alone = compare(later_c, later_t)
    assert alone.verdict is Verdict.NOT_YET_KNOWN
    carried = compare(later_c, later_t, previous=_roundtrip(first))
    assert carried.verdict is Verdict.BETTER
    assert carried.decided_at == first.decided_at == ScoreCounts(56, 56)
    assert carried.further_scores == ScoreCounts(0, 0)
    assert carried.interval is not None and alone.interval is not None
    assert carried.interval == Interval(
        max(first.interval.low, alone.interval.low), min(first.interval.high, alone.interval.high)
    )
    assert carried.interval.low > 0
    assert carried.p_value == min(first.p_value, alone.p_value)
    assert not carried.inconsistent


def test_a_contradicting_look_is_flagged_and_the_verdict_stays() -> None:
    first = compare(_alternating(40, 40), _alternating(70, 40))
    assert first.verdict is Verdict.BETTER
    # Thousands of level scores later the difference is far below the first look's interval.
    flat = _alternating(50, 4000)
    later = compare(_alternating(40, 40) + flat, _alternating(70, 40) + flat, previous=first)
    assert later.verdict is Verdict.BETTER
    assert later.inconsistent
    assert (
        later.interval == compare(_alternating(40, 40) + flat, _alternating(70, 40) + flat).interval
    )
    text = explain(later, "v3", "v4")
    assert "drift" in text
    # The flag stays once raised.
    again = compare(
        _alternating(40, 40) + flat + [50.0] * 2,
        _alternating(70, 40) + flat + [50.0] * 2,
        previous=later,
    )
    assert again.inconsistent


def test_previous_must_match() -> None:
    first = compare(_alternating(50, 20), _alternating(50, 20))
    with pytest.raises(ValueError, match="parameters"):
        compare(_alternating(50, 20), _alternating(50, 20), alpha=0.01, previous=first)
    with pytest.raises(ValueError, match="parameters"):
        compare(_alternating(50, 20), _alternating(50, 20), mixture_sd=5.0, previous=first)
    with pytest.raises(ValueError, match="missing"):
        compare(_alternating(50, 18), _alternating(50, 20), previous=first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"mixture_sd": 0.0}, "mixture_sd"),
        ({"mixture_sd": math.inf}, "mixture_sd"),
        ({"min_scores": 1}, "min_scores"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare([50.0] * 20, [50.0] * 20, **kwargs)  # type: ignore[arg-type]


def test_scores_are_checked() -> None:
    with pytest.raises(ValueError, match="scores"):
        compare([50.0, float("nan")], [50.0])


def test_smaller_alpha_needs_more_evidence() -> None:
    control, challenger = _alternating(50, 80), _alternating(57, 80)
    loose = compare(control, challenger, alpha=0.2)
    strict = compare(control, challenger, alpha=0.01)
    assert loose.interval is not None and strict.interval is not None
    assert strict.interval.low < loose.interval.low < loose.interval.high < strict.interval.high


@pytest.mark.parametrize(("n_c", "n_t"), [(20, 20), (50, 50), (200, 20), (90, 10)])
def test_further_scores_are_what_settles_it_if_the_numbers_hold(n_c: int, n_t: int) -> None:
    result = compare(_alternating(50, n_c), _alternating(55, n_t))
    assert result.verdict is Verdict.NOT_YET_KNOWN
    further = result.further_scores
    assert further is not None
    # Today's proportions carry on...
    assert further.control / further.challenger == pytest.approx(n_c / n_t, rel=0.05)
    # ...and with the same means and spread, the estimate is what decides it, and it is not
    # a generous overestimate: 5% fewer scores leave it open.
    done = compare(
        _alternating(50, n_c + further.control), _alternating(55, n_t + further.challenger)
    )
    assert done.verdict is Verdict.BETTER
    short_c, short_t = int(0.95 * further.control) // 2 * 2, int(0.95 * further.challenger) // 2 * 2
    short = compare(_alternating(50, n_c + short_c), _alternating(55, n_t + short_t))
    assert short.verdict is Verdict.NOT_YET_KNOWN


def test_further_scores_grow_as_the_difference_shrinks() -> None:
    needs = []
    for shift in (8.0, 4.0, 2.0, 1.0):
        further = compare(_alternating(50, 40), _alternating(50 + shift, 40)).further_scores
        assert further is not None
        needs.append(further.total)
    assert needs == sorted(needs)
    # Halving the difference roughly quadruples the need (a little more: the log factor).
    assert 3.5 < needs[-1] / needs[-2] < 5.0


def test_se2_for_half_width_inverts_half_width() -> None:
    for target in (0.1, 1.0, 5.0, 20.0):
        se2 = _sequential.se2_for_half_width(target, 10.0, 0.05, start=1e6)
        assert se2 is not None
        assert float(_sequential.half_width(se2, 10.0, 0.05)) == pytest.approx(target, rel=1e-9)
    assert _sequential.se2_for_half_width(0.0, 10.0, 0.05, start=1.0) is None
    assert _sequential.se2_for_half_width(5.0, 10.0, 0.05, start=0.01) == 0.01


def test_explanations() -> None:
    early = compare([50.0] * 3, [60.0] * 4)
    assert explain(early, "v3", "v4") == (
        "Not yet known: each version needs at least 10 scores (v3 has 3, v4 has 4)."
    )
    open_ = compare(_alternating(50, 40), _alternating(54, 40))
    text = explain(open_, "v3", "v4")
    assert text.startswith("Not yet known: v4 differs from v3 by +4.0 points so far")
    assert "includes 0" in text and "more scores for v4" in text
    better = explain(compare(_alternating(40, 100), _alternating(60, 100)), "v3", "v4")
    assert better.startswith("Better: v4 scores higher than v3, +20.0 points on average")
    assert "always-valid 95% interval" in better
    worse = explain(compare(_alternating(60, 100), _alternating(40, 100)), "v3", "v4")
    assert worse.startswith("Worse: v4 scores lower than v3, -20.0 points")


def test_judge_puts_it_together() -> None:
    control = ArmData("v3", scores=_alternating(40, 100), errors=[False] * 120, tokens=[50] * 120)
    challenger = ArmData("v4", scores=_alternating(60, 100), errors=[False] * 110 + [True] * 10)
    judgement = judge(control, challenger)
    assert judgement.verdict is Verdict.BETTER
    assert judgement.control.requests == 120 and judgement.challenger.errors == 10
    data = json.loads(json.dumps(judgement.to_dict(), allow_nan=False))
    assert data["verdict"] == "better"
    assert data["explanation"].startswith("Better: v4")
    assert data["comparison"]["scores"] == {"control": 100, "challenger": 100}
    assert data["control"]["name"] == "v3"


def test_judge_release_shares_alpha_among_challengers() -> None:
    control = ArmData("v3", scores=_alternating(50, 60))
    challengers = [
        ArmData("v4", scores=_alternating(58, 60)),
        ArmData("v5", scores=_alternating(50, 60)),
    ]
    first = judge_release(control, challengers, alpha=0.1)
    assert [j.comparison.alpha for j in first] == [0.05, 0.05]
    assert [j.challenger.name for j in first] == ["v4", "v5"]
    single = judge(control, challengers[0], alpha=0.05)
    assert first[0].comparison == single.comparison
    later = judge_release(
        control, challengers, alpha=0.1, previous={j.challenger.name: j.comparison for j in first}
    )
    assert [j.comparison.scores for j in later] == [ScoreCounts(60, 60)] * 2
    assert judge_release(control, [], alpha=0.1) == []
