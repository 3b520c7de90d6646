"""Per-arm summaries: what one version of a split label did, in fixed-sample terms.

These describe an arm as it stands now (a Student t interval for the mean score, Wilson's
interval for the error rate); they are not the test. The verdict between arms comes from
the always-valid confidence sequence in `app.releases.judging`, which stays valid however
often it is looked at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from app.releases._sequential import SCORE_HIGH, SCORE_LOW, FloatArray

DEFAULT_CONFIDENCE = 0.95

# Observations come as lists from the database or as numpy arrays from a simulation.
Numbers: TypeAlias = Sequence[float] | NDArray[Any]
Flags: TypeAlias = Sequence[bool] | NDArray[Any]


@dataclass(frozen=True)
class Interval:
    """A closed interval [low, high]."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Interval:
        return cls(low=float(data["low"]), high=float(data["high"]))


@dataclass(frozen=True)
class ArmData:
    """One arm's raw observations, each in arrival order.

    `errors` holds one entry per request (True when it failed), so its length is the arm's
    request count; `latencies_ms` and `tokens` hold what was measured, which may be fewer.
    """

    name: str
    scores: Numbers = ()
    errors: Flags = ()
    latencies_ms: Numbers = ()
    tokens: Sequence[int] | NDArray[Any] = ()


@dataclass(frozen=True)
class ArmSummary:
    """What an arm did: JSON-friendly, no NaN or infinity, None where nothing is known."""

    name: str
    requests: int
    errors: int
    error_rate: float | None
    error_rate_interval: Interval | None
    feedback: int
    mean_score: float | None
    mean_score_interval: Interval | None
    score_sd: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens_total: int
    tokens_mean: float | None
    confidence: float = DEFAULT_CONFIDENCE

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "error_rate_interval": _interval_dict(self.error_rate_interval),
            "feedback": self.feedback,
            "mean_score": self.mean_score,
            "mean_score_interval": _interval_dict(self.mean_score_interval),
            "score_sd": self.score_sd,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "tokens_total": self.tokens_total,
            "tokens_mean": self.tokens_mean,
            "confidence": self.confidence,
        }


def _interval_dict(interval: Interval | None) -> dict[str, float] | None:
    return None if interval is None else interval.to_dict()


def score_array(scores: Numbers) -> FloatArray:
    """The scores as floats, refusing anything off the 0-100 scale (NaN included)."""
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.size and not bool(np.all((array >= SCORE_LOW) & (array <= SCORE_HIGH))):
        raise ValueError(f"scores must lie in [{SCORE_LOW:g}, {SCORE_HIGH:g}]")
    return array


def _normal_quantile(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def mean_interval(scores: FloatArray, confidence: float) -> Interval | None:
    """Student's t interval for the mean, clipped to the score scale; None below two scores."""
    n = scores.size
    if n < 2:
        return None
    mean = float(scores.mean())
    sd = float(scores.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(max(SCORE_LOW, mean - half), min(SCORE_HIGH, mean + half))


def wilson_interval(events: int, n: int, confidence: float) -> Interval | None:
    """Wilson's score interval for a proportion: sound at 0 and 1, unlike the Wald one."""
    if n <= 0:
        return None
    z = _normal_quantile(confidence)
    p = events / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def summarize(arm: ArmData, *, confidence: float = DEFAULT_CONFIDENCE) -> ArmSummary:
    """Summarise one arm; raises ValueError on scores off the scale or negative measures."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie in (0, 1)")
    scores = score_array(arm.scores)
    errors = np.asarray(arm.errors, dtype=bool).reshape(-1)
    latencies = np.asarray(arm.latencies_ms, dtype=np.float64).reshape(-1)
    tokens = np.asarray(arm.tokens, dtype=np.int64).reshape(-1)
    if latencies.size and not bool(np.all(np.isfinite(latencies) & (latencies >= 0))):
        raise ValueError("latencies must be finite and nonnegative")
    if tokens.size and int(tokens.min()) < 0:
        raise ValueError("token counts must be nonnegative")

    requests = int(errors.size)
    error_count = int(errors.sum())
    p50: float | None = None
    p95: float | None = None
    if latencies.size:
        p50, p95 = (float(q) for q in np.percentile(latencies, [50, 95]))
    return ArmSummary(
        name=arm.name,
        requests=requests,
        errors=error_count,
        error_rate=error_count / requests if requests else None,
        error_rate_interval=wilson_interval(error_count, requests, confidence),
        feedback=int(scores.size),
        mean_score=float(scores.mean()) if scores.size else None,
        mean_score_interval=mean_interval(scores, confidence),
        score_sd=float(scores.std(ddof=1)) if scores.size >= 2 else None,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        tokens_total=int(tokens.sum()),
        tokens_mean=float(tokens.mean()) if tokens.size else None,
        confidence=confidence,
    )
