"""Tests of the test: seeded simulated releases, the verdict checked after every score.

Equal arms: the share of releases that EVER declare a winner must stay at or below alpha.
The check cannot flake (every run is seeded) and is not lenient by luck: it fails when the
realised count is above what Binomial(runs, alpha) gives with chance 0.1%, i.e. when the
simulation itself is strong evidence that the error rate exceeds alpha. The same harness
shows a fixed-sample z-test, checked as often, failing that bound by far.

Known truth: the challenger's true mean 10 points above the control's (scores 100 x Beta
with means 50 and 60, sd 20) must be called "better" within a stated number of scores.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from app.releases.judging import Comparison, Verdict, compare
from tests.unit.releases._simulate import (
    NO_DECISION,
    Draw,
    clipped_normal,
    decide,
    draw,
    scaled_beta,
    simulate,
    stars,
    thumbs,
)

ALPHA = 0.05


def _binomial_ceiling(runs: int, alpha: float, chance: float = 1e-3) -> int:
    """The largest count that Binomial(runs, alpha) reaches with chance above `chance`."""
    return int(stats.binom.isf(chance, runs, alpha))


def _clopper_pearson_upper(count: int, runs: int, confidence: float = 0.999) -> float:
    return 1.0 if count == runs else float(stats.beta.ppf(confidence, count + 1, runs - count))


EQUAL_ARMS = [
    # (label, draw, challenger's share of the scores, runs, scores per run)
    ("clipped normal 60+-20, 50/50", clipped_normal(60, 20), 0.5, 3000, 10000),
    ("clipped normal 60+-20, 90/10", clipped_normal(60, 20), 0.1, 1000, 5000),
    ("thumbs 90% up, 90/10", thumbs(0.9), 0.1, 1000, 5000),
    ("thumbs 98% up, 50/50", thumbs(0.98), 0.5, 1000, 4000),
    ("five stars, skewed, 50/50", stars((0.02, 0.03, 0.1, 0.35, 0.5)), 0.5, 1000, 4000),
]


@pytest.mark.parametrize(
    ("label", "scores", "share", "runs", "horizon"), EQUAL_ARMS, ids=[e[0] for e in EQUAL_ARMS]
)
def test_equal_arms_rarely_ever_declare_a_winner(
    label: str, scores: Draw, share: float, runs: int, horizon: int
) -> None:
    result = simulate(
        seed=20260518,
        runs=runs,
        horizon=horizon,
        share=share,
        control=scores,
        challenger=scores,
        alpha=ALPHA,
    )
    count = int(result.ever.sum())
    ceiling = _binomial_ceiling(runs, ALPHA)
    rate = count / runs
    assert count <= ceiling, (
        f"{label}: {count}/{runs} = {rate:.2%} of releases ever declared a winner while "
        f"checked after each of {horizon} scores; alpha {ALPHA:.0%}, allowed at most {ceiling} "
        f"(99.9% upper bound on the true rate: {_clopper_pearson_upper(count, runs):.2%})"
    )
    print(f"{label}: realised type-I rate {rate:.2%} ({count}/{runs}), ceiling {ceiling}")


def test_a_fixed_sample_test_fails_the_same_check() -> None:
    """The harness can tell: a plain z-test checked after every score declares far too often."""
    scores = clipped_normal(60, 20)
    result = simulate(seed=7, runs=500, horizon=2000, share=0.5, control=scores, challenger=scores)
    naive = int((result.naive_first != NO_DECISION).sum())
    assert naive > _binomial_ceiling(500, ALPHA)
    assert naive / 500 > 0.3, f"naive rate {naive / 500:.1%}"


def test_error_rate_holds_at_a_smaller_alpha() -> None:
    scores = clipped_normal(60, 20)
    result = simulate(
        seed=3, runs=2000, horizon=3000, share=0.5, control=scores, challenger=scores, alpha=0.01
    )
    count = int(result.ever.sum())
    assert count <= _binomial_ceiling(2000, 0.01), f"{count}/2000 at alpha 1%"


# The bounds: across 30 seeds tried while choosing them, the 95th percentile ran from 295 to
# 419 scores (50/50) and from 859 to 1140 (90/10); the medians were 146 and 447.
KNOWN_TRUTH = [
    # (label, challenger's share, scores per run, bound on the scores, both arms together)
    ("50/50", 0.5, 1000, 450),
    ("90/10", 0.1, 3000, 1300),
]


@pytest.mark.parametrize(
    ("label", "share", "horizon", "bound"), KNOWN_TRUTH, ids=[k[0] for k in KNOWN_TRUTH]
)
def test_ten_points_better_is_found_within_the_bound(
    label: str, share: float, horizon: int, bound: int
) -> None:
    runs = 200
    result = simulate(
        seed=4242,
        runs=runs,
        horizon=horizon,
        share=share,
        control=scaled_beta(50, 20),
        challenger=scaled_beta(60, 20),
    )
    first = result.first_better
    assert (result.first_worse == NO_DECISION).all(), "a better challenger was called worse"
    reached = first != NO_DECISION
    assert reached.all(), f"{label}: {int((~reached).sum())} runs undecided after {horizon}"
    within = float(np.mean(first <= bound))
    p50, p95 = np.percentile(first, [50, 95])
    assert within >= 0.95, (
        f"{label}: only {within:.1%} of {runs} runs said 'better' within {bound} scores "
        f"(median {p50:.0f}, 95th percentile {p95:.0f})"
    )
    print(f"{label}: 'better' after median {p50:.0f}, p95 {p95:.0f}, max {first.max()} scores")


def test_ten_points_worse_is_found_too() -> None:
    result = simulate(
        seed=99,
        runs=200,
        horizon=1000,
        share=0.5,
        control=scaled_beta(60, 20),
        challenger=scaled_beta(50, 20),
    )
    assert (result.first_better == NO_DECISION).all()
    assert float(np.mean((result.first_worse != NO_DECISION) & (result.first_worse <= 450))) >= 0.95


def _walk(to_challenger: np.ndarray, values: np.ndarray, stop: int) -> tuple[int, Comparison]:
    """Look after every score through the public API, carrying each look to the next."""
    control: list[float] = []
    challenger: list[float] = []
    previous: Comparison | None = None
    for i in range(stop):
        (challenger if to_challenger[i] else control).append(float(values[i]))
        previous = compare(control, challenger, previous=previous)
        if previous.verdict is not Verdict.NOT_YET_KNOWN:
            return i + 1, previous
    assert previous is not None
    return NO_DECISION, previous


def test_the_public_api_decides_where_the_simulation_does() -> None:
    rng = np.random.default_rng(17)
    to_challenger, values = draw(rng, 4, 600, 0.5, scaled_beta(50, 20), scaled_beta(60, 20))
    expected = decide(to_challenger, values)
    for run in range(4):
        at, last = _walk(to_challenger[run], values[run], stop=600)
        assert at == expected.first_better[run]
        assert last.verdict is Verdict.BETTER
        assert last.decided_at is not None and last.decided_at.total == at
