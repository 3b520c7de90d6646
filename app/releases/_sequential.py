"""The always-valid arithmetic behind the verdict and the guardrail.

Everything here works on sufficient statistics (counts, means, sums of squared deviations)
and is vectorised with numpy, so the service computes one look with scalars and the tests
compute every look of thousands of simulated releases at once with the same code.

Difference of mean scores: the normal-mixture boundary of the mSPRT (Johari, Koomen,
Pekelis, Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests", Operations
Research 70(3), 2022; KDD 2017 as "Peeking at A/B Tests"). The estimated difference behaves
like a Brownian motion in information time 1/se^2; mixing its likelihood ratio over a normal
prior N(0, tau^2) on the true difference gives

    Lambda = sqrt(se^2 / (se^2 + tau^2)) * exp(tau^2 d^2 / (2 se^2 (se^2 + tau^2)))

a nonnegative martingale under "no difference", so Ville's inequality bounds the chance that
it ever crosses 1/alpha by alpha. Inverting it gives the confidence sequence
d +- half_width(se^2). With plug-in variances this is the Gaussian-mixture asymptotic
confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas ("Time-uniform central
limit theory and asymptotic confidence sequences", Annals of Statistics 52(6), 2024), which
is what makes the plug-in valid as the counts grow.

The plug-in variance is made safe for small, skewed arms (a 10 % canary whose first twenty
scores are all 100) in two ways: each arm's variance counts one pseudo-score at each end of
the score scale, and se^2 is never below the one computed from the pooled scores, which a
small arm's luck cannot shrink. Both only widen the interval and fade as counts grow.

Error rates: each arm's rate gets the exact beta-binomial mixture confidence sequence
(Robbins, "Statistical methods related to the law of the iterated logarithm", Annals of
Mathematical Statistics 41(5), 1970; Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49(2), 2021).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.special import betaln

FloatArray = NDArray[np.float64]

SCORE_LOW = 0.0
SCORE_HIGH = 100.0
# Beta(1/2, 1/2), Jeffreys' prior, mixes the error-rate likelihood ratio: it puts weight near
# 0 where error rates live.
_BETA_PRIOR = 0.5
# A root's bracket never reaches exactly 0: log(0) is undefined.
_TINY = 1e-300


def _f64(value: ArrayLike) -> FloatArray:
    return np.asarray(value, dtype=np.float64)


def regularized_variance(n: ArrayLike, mean: ArrayLike, ss: ArrayLike) -> FloatArray:
    """The sample variance of the scores plus one pseudo-score at each end of the scale.

    `ss` is the sum of squared deviations from `mean` over `n` scores. The pseudo-scores keep
    the variance away from 0 when an arm's first scores happen to agree, the way Wilson's
    interval keeps a proportion's away from 0.
    """
    n_, mean_, ss_ = _f64(n), _f64(mean), _f64(ss)
    centre = (SCORE_LOW + SCORE_HIGH) / 2
    pseudo_ss = (SCORE_HIGH - SCORE_LOW) ** 2 / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = ss_ + pseudo_ss + n_ * 2 / (n_ + 2) * (mean_ - centre) ** 2
        result: FloatArray = np.where(n_ > 0, combined / (n_ + 1), pseudo_ss)
    return result


def difference_variance(
    n_c: ArrayLike,
    mean_c: ArrayLike,
    ss_c: ArrayLike,
    n_t: ArrayLike,
    mean_t: ArrayLike,
    ss_t: ArrayLike,
) -> FloatArray:
    """se^2 of (challenger mean - control mean): the larger of Welch's and the pooled one.

    Welch's form stays right when the arms' spreads differ; the pooled form stops a small
    arm whose luck gave it both a high mean and a low spread from looking certain.
    """
    nc, mc, sc = _f64(n_c), _f64(mean_c), _f64(ss_c)
    nt, mt, st = _f64(n_t), _f64(mean_t), _f64(ss_t)
    welch = regularized_variance(nc, mc, sc) / nc + regularized_variance(nt, mt, st) / nt
    n = nc + nt
    pooled_mean = (nc * mc + nt * mt) / n
    pooled_ss = sc + st + nc * nt / n * (mc - mt) ** 2
    pooled = regularized_variance(n, pooled_mean, pooled_ss) * (1 / nc + 1 / nt)
    result: FloatArray = np.maximum(welch, pooled)
    return result


def half_width(se2: ArrayLike, tau: float, alpha: float) -> FloatArray:
    """Half the width of the always-valid (1 - alpha) interval for the difference.

    It is the set of differences whose mixture likelihood ratio stays below 1/alpha:
    sqrt(se^2 (1 + se^2/tau^2) (log(1 + tau^2/se^2) + 2 log(1/alpha))).
    """
    s2 = _f64(se2)
    ratio = tau * tau / s2
    result: FloatArray = np.sqrt(s2 * (1 + 1 / ratio) * (np.log1p(ratio) - 2 * math.log(alpha)))
    return result


def log_evidence(difference: ArrayLike, se2: ArrayLike, tau: float) -> FloatArray:
    """log Lambda against "no difference"; the always-valid p-value is min(1, exp(-it))."""
    d, s2 = _f64(difference), _f64(se2)
    ratio = tau * tau / s2
    result: FloatArray = d * d / (2 * s2) * ratio / (1 + ratio) - 0.5 * np.log1p(ratio)
    return result


def se2_for_half_width(target: float, tau: float, alpha: float, start: float) -> float | None:
    """The se^2 at which the interval's half-width falls to `target`, or None.

    The half-width grows with se^2, so the answer lies in (0, start] when `start` is still
    too wide; `start` at or below the answer means the target is already met.
    """
    if not target > 0 or not math.isfinite(target):
        return None

    def excess(log_se2: float) -> float:
        return float(half_width(math.exp(log_se2), tau, alpha)) - target

    high = math.log(start)
    if excess(high) <= 0:
        return start
    low = high
    for _ in range(200):
        low -= 5.0
        if excess(low) < 0:
            return math.exp(float(brentq(excess, low, low + 5.0, xtol=1e-12)))
    return None


def _lower_rate(successes: int, failures: int, alpha: float) -> float:
    """The lowest rate the beta-binomial mixture confidence sequence keeps."""
    if successes == 0:
        return 0.0
    n = successes + failures
    # A rate p stays while log(mixture / likelihood(p)) < log(1/alpha).
    cutoff = (
        betaln(_BETA_PRIOR + successes, _BETA_PRIOR + failures)
        - betaln(_BETA_PRIOR, _BETA_PRIOR)
        + math.log(alpha)
    )

    def margin(p: float) -> float:
        return successes * math.log(p) + failures * math.log1p(-p) - float(cutoff)

    estimate = successes / n
    if margin(_TINY) >= 0:
        return 0.0
    if estimate >= 1.0:
        # All successes: the bound solves n log p = cutoff in closed form.
        return math.exp(float(cutoff) / n)
    return float(brentq(margin, _TINY, estimate, xtol=1e-15))


def rate_sequence(events: int, n: int, alpha: float) -> tuple[float, float]:
    """The always-valid (1 - alpha) interval for a Bernoulli rate after n trials.

    Exact for any n and any number of looks: the beta-binomial mixture is a martingale under
    every true rate, so Ville's inequality applies without asymptotics.
    """
    if n <= 0:
        return (0.0, 1.0)
    low = _lower_rate(events, n - events, alpha)
    high = 1.0 - _lower_rate(n - events, events, alpha)
    return (low, high)
