"""Judging an A/B release of prompt versions from the users' own feedback scores.

A release label split across versions has arms: one control and one or more challengers.
Each arm gets a summary (`summarize`), and each challenger a verdict against the control:
"better", "worse" or "not yet known" (`compare`, `judge`, `judge_release`). A guardrail
(`guardrail_breach`) says when a challenger is significantly worse on errors or scores.

The verdict must stay valid when a team looks at it every day, or after every score: a
fixed-sample test checked that often declares a winner between equal arms far more often
than its alpha. So the verdict comes from an always-valid confidence sequence for the
difference of mean scores (challenger - control): the normal-mixture sequential probability
ratio test (mSPRT) of

    Johari, Koomen, Pekelis, Walsh. "Always Valid Inference: Continuous Monitoring of A/B
    Tests." Operations Research 70(3), 2022 (KDD 2017: "Peeking at A/B Tests").

with plug-in variances, which is the Gaussian-mixture asymptotic confidence sequence of

    Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas. "Time-uniform central limit theory and
    asymptotic confidence sequences." Annals of Statistics 52(6), 2024.

Whatever the number and timing of looks, the chance that the interval ever excludes the true
difference is at most alpha (asymptotically in the counts; `_sequential` says how small
arms are kept honest). The verdict is "better" once the interval lies above 0, "worse" once
below.

Looks and stickiness: pass the previous look's `Comparison` as `previous` and the interval
becomes the running intersection of every look's interval, and the p-value the running
minimum; both are as valid as a single look, since coverage holds at all times at once. The
intersection only narrows, so a reached verdict never returns to "not yet known". Should a
new interval miss the intersection altogether (which happens with chance at most alpha when
the arms' means are fixed, so it says they drift, a novelty effect say), the verdict stays,
`inconsistent` turns true and the interval restarts from the current look. Without
`previous`, each look stands alone: just as valid, but it may return to "not yet known".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.optimize import brentq

from app.releases._sequential import (
    FloatArray,
    difference_variance,
    half_width,
    log_evidence,
    rate_sequence,
    se2_for_half_width,
)
from app.releases._summary import (
    ArmData,
    ArmSummary,
    Interval,
    Numbers,
    score_array,
    summarize,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIXTURE_SD",
    "MIN_SCORES",
    "ArmData",
    "ArmSummary",
    "Comparison",
    "Interval",
    "Judgement",
    "ScoreCounts",
    "Verdict",
    "compare",
    "explain",
    "guardrail_breach",
    "judge",
    "judge_release",
    "summarize",
]

DEFAULT_ALPHA = 0.05
# The mixture's spread over true differences, in score points: the test is quickest for
# differences of about this size and loses little (a log factor) on others.
DEFAULT_MIXTURE_SD = 10.0
# Each arm needs this many scores before its interval is computed: the plug-in variance
# means nothing on fewer.
MIN_SCORES = 10


class Verdict(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    NOT_YET_KNOWN = "not yet known"


@dataclass(frozen=True)
class ScoreCounts:
    """A number of scores per arm."""

    control: int
    challenger: int

    @property
    def total(self) -> int:
        return self.control + self.challenger

    def to_dict(self) -> dict[str, int]:
        return {"control": self.control, "challenger": self.challenger}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreCounts:
        return cls(control=int(data["control"]), challenger=int(data["challenger"]))


@dataclass(frozen=True)
class Comparison:
    """One look at a challenger against the control; JSON-friendly and storable.

    `interval` is the always-valid (1 - alpha) interval for challenger mean - control mean
    (None until both arms have `min_scores`), `p_value` the always-valid p-value against
    "no difference", `decided_at` the counts at the look that reached the verdict, and
    `further_scores` the scores per arm likely still needed (0 once decided, None when
    unknown).
    """

    alpha: float
    mixture_sd: float
    min_scores: int
    scores: ScoreCounts
    difference: float | None
    interval: Interval | None
    p_value: float
    verdict: Verdict
    decided_at: ScoreCounts | None
    further_scores: ScoreCounts | None
    inconsistent: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "mixture_sd": self.mixture_sd,
            "min_scores": self.min_scores,
            "scores": self.scores.to_dict(),
            "difference": self.difference,
            "interval": None if self.interval is None else self.interval.to_dict(),
            "p_value": self.p_value,
            "verdict": self.verdict.value,
            "decided_at": None if self.decided_at is None else self.decided_at.to_dict(),
            "further_scores": (
                None if self.further_scores is None else self.further_scores.to_dict()
            ),
            "inconsistent": self.inconsistent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        interval, decided, further = data["interval"], data["decided_at"], data["further_scores"]
        difference = data["difference"]
        return cls(
            alpha=float(data["alpha"]),
            mixture_sd=float(data["mixture_sd"]),
            min_scores=int(data["min_scores"]),
            scores=ScoreCounts.from_dict(data["scores"]),
            difference=None if difference is None else float(difference),
            interval=None if interval is None else Interval.from_dict(interval),
            p_value=float(data["p_value"]),
            verdict=Verdict(data["verdict"]),
            decided_at=None if decided is None else ScoreCounts.from_dict(decided),
            further_scores=None if further is None else ScoreCounts.from_dict(further),
            inconsistent=bool(data.get("inconsistent", False)),
        )


@dataclass(frozen=True)
class _Moments:
    n: int
    mean: float
    ss: float

    @classmethod
    def of(cls, scores: FloatArray) -> _Moments:
        if not scores.size:
            return cls(0, 0.0, 0.0)
        mean = float(scores.mean())
        return cls(int(scores.size), mean, float(np.sum((scores - mean) ** 2)))


def _check_parameters(alpha: float, mixture_sd: float, min_scores: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    if not (mixture_sd > 0 and math.isfinite(mixture_sd)):
        raise ValueError("mixture_sd must be a positive number")
    if min_scores < 2:
        raise ValueError("min_scores must be at least 2")


def _check_previous(
    previous: Comparison, counts: ScoreCounts, alpha: float, mixture_sd: float, min_scores: int
) -> None:
    if (previous.alpha, previous.mixture_sd, previous.min_scores) != (
        alpha,
        mixture_sd,
        min_scores,
    ):
        raise ValueError("previous look used other parameters; its intersection cannot carry")
    if counts.control < previous.scores.control or counts.challenger < previous.scores.challenger:
        raise ValueError("scores went missing since the previous look")


def _verdict_of(interval: Interval) -> Verdict:
    if interval.low > 0:
        return Verdict.BETTER
    if interval.high < 0:
        return Verdict.WORSE
    return Verdict.NOT_YET_KNOWN


def _further_scores(
    control: _Moments, challenger: _Moments, difference: float, se2: float, tau: float, alpha: float
) -> ScoreCounts | None:
    """Scores per arm after which the interval would exclude 0, if today's numbers held.

    The half-width grows with se^2 (about v_c/n_c + v_t/n_t), so: find the se^2 at which
    the half-width equals the observed |difference|, then the number m of further scores,
    arriving in today's proportions with today's means and spread per score, that brings
    se^2 down to it. se^2 is computed as `compare` will compute it then, pseudo-scores and
    all, so the estimate is neither shy nor wishful about how they fade.
    """
    if difference == 0:
        return None
    target = se2_for_half_width(abs(difference), tau, alpha, se2)
    if target is None:
        return None
    total = control.n + challenger.n
    share_c, share_t = control.n / total, challenger.n / total

    def excess(m: float) -> float:
        n_c = control.n + share_c * m
        n_t = challenger.n + share_t * m
        later = difference_variance(
            n_c,
            control.mean,
            control.ss * n_c / control.n,
            n_t,
            challenger.mean,
            challenger.ss * n_t / challenger.n,
        )
        return float(later) - target

    if excess(0.0) <= 0:
        return ScoreCounts(0, 0)
    high = float(total)
    for _ in range(200):
        if excess(high) < 0:
            m = float(brentq(excess, 0.0, high, rtol=1e-10))
            return ScoreCounts(math.ceil(share_c * m), math.ceil(share_t * m))
        high *= 2
    return None


def compare(
    control_scores: Numbers,
    challenger_scores: Numbers,
    *,
    alpha: float = DEFAULT_ALPHA,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
    min_scores: int = MIN_SCORES,
    previous: Comparison | None = None,
) -> Comparison:
    """Compare a challenger's feedback scores with the control's, valid at every look.

    Pass the last look's result as `previous` to keep the running intersection (the verdict
    then never goes back to "not yet known"); the scores given must include the earlier ones.
    """
    _check_parameters(alpha, mixture_sd, min_scores)
    control = _Moments.of(score_array(control_scores))
    challenger = _Moments.of(score_array(challenger_scores))
    counts = ScoreCounts(control.n, challenger.n)
    if previous is not None:
        _check_previous(previous, counts, alpha, mixture_sd, min_scores)
    difference = challenger.mean - control.mean if control.n and challenger.n else None
    if difference is None or min(control.n, challenger.n) < min_scores:
        return Comparison(
            alpha=alpha,
            mixture_sd=mixture_sd,
            min_scores=min_scores,
            scores=counts,
            difference=difference,
            interval=None,
            p_value=1.0,
            verdict=Verdict.NOT_YET_KNOWN,
            decided_at=None,
            further_scores=None,
        )

    se2 = float(
        difference_variance(
            control.n, control.mean, control.ss, challenger.n, challenger.mean, challenger.ss
        )
    )
    half = float(half_width(se2, mixture_sd, alpha))
    current = Interval(difference - half, difference + half)
    p_value = min(1.0, math.exp(-float(log_evidence(difference, se2, mixture_sd))))
    interval, inconsistent = current, False
    if previous is not None and previous.interval is not None:
        p_value = min(p_value, previous.p_value)
        low = max(previous.interval.low, current.low)
        high = min(previous.interval.high, current.high)
        if low <= high:
            interval = Interval(low, high)
        else:
            inconsistent = True
        inconsistent = inconsistent or previous.inconsistent

    verdict: Verdict
    if previous is not None and previous.verdict is not Verdict.NOT_YET_KNOWN:
        verdict, decided_at = previous.verdict, previous.decided_at
    else:
        verdict = _verdict_of(interval)
        decided_at = None if verdict is Verdict.NOT_YET_KNOWN else counts
    further = (
        ScoreCounts(0, 0)
        if verdict is not Verdict.NOT_YET_KNOWN
        else _further_scores(control, challenger, difference, se2, mixture_sd, alpha)
    )
    return Comparison(
        alpha=alpha,
        mixture_sd=mixture_sd,
        min_scores=min_scores,
        scores=counts,
        difference=difference,
        interval=interval,
        p_value=p_value,
        verdict=verdict,
        decided_at=decided_at,
        further_scores=further,
        inconsistent=inconsistent,
    )


def explain(comparison: Comparison, control: str, challenger: str) -> str:
    """The verdict in words, for the dashboard and the command line."""
    level = f"{1 - comparison.alpha:.0%}"
    counts = comparison.scores
    if comparison.interval is None or comparison.difference is None:
        return (
            f"Not yet known: each version needs at least {comparison.min_scores} scores "
            f"({control} has {counts.control}, {challenger} has {counts.challenger})."
        )
    d = comparison.difference
    low, high = comparison.interval.low, comparison.interval.high
    span = f"always-valid {level} interval {low:+.1f} to {high:+.1f}"
    if comparison.verdict is Verdict.NOT_YET_KNOWN:
        text = (
            f"Not yet known: {challenger} differs from {control} by {d:+.1f} points so far, "
            f"and the {span} still includes 0."
        )
        further = comparison.further_scores
        if further is not None:
            text += (
                f" If that difference held, about {further.challenger} more scores for "
                f"{challenger} and {further.control} for {control} would settle it."
            )
        return text
    direction = "higher" if comparison.verdict is Verdict.BETTER else "lower"
    text = (
        f"{comparison.verdict.value.capitalize()}: {challenger} scores {direction} than "
        f"{control}, {d:+.1f} points on average ({span})."
    )
    if comparison.inconsistent:
        text += (
            " The difference has since moved outside what the earlier looks allowed: the "
            "arms' scores drift over time, so treat the verdict with care."
        )
    return text


@dataclass(frozen=True)
class Judgement:
    """A challenger judged against the control: both summaries, the comparison, in words."""

    control: ArmSummary
    challenger: ArmSummary
    comparison: Comparison

    @property
    def verdict(self) -> Verdict:
        return self.comparison.verdict

    @property
    def explanation(self) -> str:
        return explain(self.comparison, self.control.name, self.challenger.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control.to_dict(),
            "challenger": self.challenger.to_dict(),
            "comparison": self.comparison.to_dict(),
            "verdict": self.verdict.value,
            "explanation": self.explanation,
        }


def judge(
    control: ArmData,
    challenger: ArmData,
    *,
    alpha: float = DEFAULT_ALPHA,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
    min_scores: int = MIN_SCORES,
    previous: Comparison | None = None,
) -> Judgement:
    """Summarise both arms and compare their scores (see `compare` for `previous`)."""
    comparison = compare(
        control.scores,
        challenger.scores,
        alpha=alpha,
        mixture_sd=mixture_sd,
        min_scores=min_scores,
        previous=previous,
    )
    return Judgement(summarize(control), summarize(challenger), comparison)


def judge_release(
    control: ArmData,
    challengers: Sequence[ArmData],
    *,
    alpha: float = DEFAULT_ALPHA,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
    min_scores: int = MIN_SCORES,
    previous: Mapping[str, Comparison] | None = None,
) -> list[Judgement]:
    """Judge every challenger against the control, alpha shared among them (Bonferroni).

    With k challengers each comparison runs at alpha / k, so the chance that any of them
    ever declares a winner that is not one stays at most alpha. `previous` maps a
    challenger's name to its last comparison.
    """
    if not challengers:
        return []
    share = alpha / len(challengers)
    earlier = previous or {}
    return [
        judge(
            control,
            arm,
            alpha=share,
            mixture_sd=mixture_sd,
            min_scores=min_scores,
            previous=earlier.get(arm.name),
        )
        for arm in challengers
    ]


def guardrail_breach(
    control: ArmData,
    challenger: ArmData,
    alpha: float = DEFAULT_ALPHA,
    *,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
    min_scores: int = MIN_SCORES,
) -> str | None:
    """Why the challenger should be rolled back, or None while it is not known to be worse.

    Two checks share alpha, so the chance of ever rolling back a challenger that is no worse
    stays at most alpha however often this runs. Error rate (alpha/2): each arm's exact
    beta-binomial confidence sequence at alpha/4, a breach when the challenger's lowest
    plausible rate is above the control's highest. Mean score (alpha/2): the verdict's
    confidence sequence, a breach when it lies wholly below 0.
    """
    _check_parameters(alpha, mixture_sd, min_scores)
    reasons: list[str] = []
    control_errors = np.asarray(control.errors, dtype=bool).reshape(-1)
    challenger_errors = np.asarray(challenger.errors, dtype=bool).reshape(-1)
    if control_errors.size and challenger_errors.size:
        c_events, c_n = int(control_errors.sum()), int(control_errors.size)
        t_events, t_n = int(challenger_errors.sum()), int(challenger_errors.size)
        _, control_high = rate_sequence(c_events, c_n, alpha / 4)
        challenger_low, _ = rate_sequence(t_events, t_n, alpha / 4)
        if challenger_low > control_high:
            reasons.append(
                f"error rate of {challenger.name} ({t_events / t_n:.2%} of {t_n} requests) is "
                f"significantly above {control.name}'s ({c_events / c_n:.2%} of {c_n})"
            )
    scores = compare(
        control.scores,
        challenger.scores,
        alpha=alpha / 2,
        mixture_sd=mixture_sd,
        min_scores=min_scores,
    )
    if (
        scores.verdict is Verdict.WORSE
        and scores.interval is not None
        and scores.difference is not None
    ):
        reasons.append(
            f"mean score of {challenger.name} is significantly below {control.name}'s: "
            f"{scores.difference:+.1f} points (always-valid {1 - alpha / 2:.1%} interval "
            f"{scores.interval.low:+.1f} to {scores.interval.high:+.1f})"
        )
    return "; ".join(reasons) if reasons else None
