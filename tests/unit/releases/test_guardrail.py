"""The guardrail, and the exact confidence sequence for error rates beneath it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import betaln

from app.releases._sequential import rate_sequence
from app.releases.judging import ArmData, guardrail_breach


def _alternating(mean: float, n: int) -> list[float]:
    return [mean + 10 if i % 2 == 0 else mean - 10 for i in range(n)]


def _log_mixture_ratio(events: np.ndarray, n: np.ndarray, rate: float) -> np.ndarray:
    """log of the beta-binomial mixture over the likelihood at `rate` (Jeffreys prior)."""
    failures = n - events
    ratio: np.ndarray = (
        betaln(0.5 + events, 0.5 + failures)
        - betaln(0.5, 0.5)
        - events * math.log(rate)
        - failures * math.log1p(-rate)
    )
    return ratio


@pytest.mark.parametrize(
    ("events", "n"),
    [(0, 1), (1, 1), (0, 500), (3, 500), (250, 500), (499, 500), (500, 500), (7, 10**7)],
)
def test_rate_bounds_are_where_the_mixture_reaches_one_over_alpha(events: int, n: int) -> None:
    alpha = 0.05
    low, high = rate_sequence(events, n, alpha)
    assert 0.0 <= low <= events / n <= high <= 1.0
    for bound, edge in ((low, 0.0), (high, 1.0)):
        if bound != edge:
            value = _log_mixture_ratio(np.array(events), np.array(n), bound)
            assert float(value) == pytest.approx(-math.log(alpha), abs=1e-6)
    inside = (low + high) / 2
    assert float(_log_mixture_ratio(np.array(events), np.array(n), inside)) < -math.log(alpha)


def test_rate_sequence_without_requests() -> None:
    assert rate_sequence(0, 0, 0.05) == (0.0, 1.0)


@pytest.mark.parametrize("rate", [0.01, 0.3])
def test_rate_sequence_covers_at_every_look(rate: float) -> None:
    """The true rate leaves the interval at some look in at most alpha of the runs."""
    alpha, runs, horizon = 0.05, 2000, 3000
    rng = np.random.default_rng(int(rate * 1000))
    events = np.cumsum(rng.random((runs, horizon)) < rate, axis=1)
    n = np.arange(1, horizon + 1)
    # The rate is outside exactly when the mixture ratio at it reaches 1/alpha.
    ever = (_log_mixture_ratio(events, n, rate) >= -math.log(alpha)).any(axis=1)
    count = int(ever.sum())
    assert count <= int(stats.binom.isf(1e-3, runs, alpha)), f"{count}/{runs} missed"


def test_no_breach_without_data_or_with_equal_arms() -> None:
    assert guardrail_breach(ArmData("v3"), ArmData("v4")) is None
    control = ArmData("v3", scores=_alternating(60, 400), errors=[False] * 980 + [True] * 20)
    challenger = ArmData("v4", scores=_alternating(60, 400), errors=[False] * 980 + [True] * 20)
    assert guardrail_breach(control, challenger) is None


def test_a_better_challenger_is_no_breach() -> None:
    control = ArmData("v3", scores=_alternating(50, 400), errors=[False] * 900 + [True] * 100)
    challenger = ArmData("v4", scores=_alternating(70, 400), errors=[False] * 1000)
    assert guardrail_breach(control, challenger) is None


def test_a_higher_error_rate_is_a_breach() -> None:
    control = ArmData("v3", errors=[False] * 1980 + [True] * 20)
    challenger = ArmData("v4", errors=[False] * 240 + [True] * 60)
    reason = guardrail_breach(control, challenger)
    assert reason is not None
    assert reason.startswith("error rate of v4 (20.00% of 300 requests) is significantly")
    assert "v3's (1.00% of 2000)" in reason


def test_a_lower_mean_score_is_a_breach() -> None:
    control = ArmData("v3", scores=_alternating(70, 200))
    challenger = ArmData("v4", scores=_alternating(50, 200))
    reason = guardrail_breach(control, challenger)
    assert reason is not None
    assert reason.startswith("mean score of v4 is significantly below v3's: -20.0 points")
    assert "97.5% interval" in reason


def test_both_breaches_are_named() -> None:
    control = ArmData("v3", scores=_alternating(70, 200), errors=[False] * 1000)
    challenger = ArmData("v4", scores=_alternating(50, 200), errors=[True] * 100 + [False] * 200)
    reason = guardrail_breach(control, challenger)
    assert reason is not None
    assert "error rate" in reason and "; mean score" in reason


def test_a_small_difference_on_little_data_is_no_breach() -> None:
    control = ArmData("v3", scores=_alternating(60, 12), errors=[False] * 30)
    challenger = ArmData("v4", scores=_alternating(55, 12), errors=[False] * 28 + [True] * 2)
    assert guardrail_breach(control, challenger) is None


def test_guardrail_refuses_bad_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        guardrail_breach(ArmData("v3"), ArmData("v4"), alpha=1.5)


def test_error_guardrail_catches_a_bad_challenger_in_time() -> None:
    """Control 1% errors, challenger 10%: breached within 600 requests a side in 95% of runs."""
    rng = np.random.default_rng(8)
    looks = range(50, 1001, 50)
    when = []
    for _ in range(40):
        control = rng.random(1000) < 0.01
        challenger = rng.random(1000) < 0.10
        hit = next(
            (
                n
                for n in looks
                if guardrail_breach(
                    ArmData("v3", errors=control[:n]), ArmData("v4", errors=challenger[:n])
                )
            ),
            None,
        )
        when.append(math.inf if hit is None else hit)
    assert np.mean(np.array(when) <= 600) >= 0.95, sorted(when)
