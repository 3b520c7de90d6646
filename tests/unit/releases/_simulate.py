"""Simulated releases, every look at once: the production formulas on numpy arrays.

A run is one release: `horizon` scores arrive one by one, each for the challenger with
probability `share`, and the verdict is checked after every one of them. Running sums give
each arm's count, mean and sum of squared deviations at every look, which go through the
same functions `compare` uses (`difference_variance`, `half_width`), so a run "declares" at
the first look whose interval excludes 0 - exactly when the running intersection would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.releases._sequential import difference_variance, half_width

Draw = Callable[[np.random.Generator, tuple[int, int]], NDArray[np.float64]]

NO_DECISION = -1


@dataclass(frozen=True)
class Runs:
    """Per run: the 1-based count of scores (both arms) at the first "better" / "worse"
    look, NO_DECISION when none came; and the same for a naive fixed-sample z-test."""

    first_better: NDArray[np.int64]
    first_worse: NDArray[np.int64]
    naive_first: NDArray[np.int64]

    @property
    def ever(self) -> NDArray[np.bool_]:
        ever: NDArray[np.bool_] = (self.first_better != NO_DECISION) | (
            self.first_worse != NO_DECISION
        )
        return ever


def clipped_normal(mean: float, sd: float) -> Draw:
    return lambda rng, shape: np.clip(rng.normal(mean, sd, shape), 0.0, 100.0)


def scaled_beta(mean: float, sd: float) -> Draw:
    """100 x Beta with the given mean and sd on the 0-100 scale: the true mean is exact."""
    m, v = mean / 100, (sd / 100) ** 2
    concentration = m * (1 - m) / v - 1
    a, b = m * concentration, (1 - m) * concentration
    return lambda rng, shape: 100.0 * rng.beta(a, b, shape)


def thumbs(up: float) -> Draw:
    """Thumbs up (100) with probability `up`, else thumbs down (0)."""
    return lambda rng, shape: np.where(rng.random(shape) < up, 100.0, 0.0)


def stars(probabilities: tuple[float, ...]) -> Draw:
    """One to five stars as 0, 25, 50, 75, 100."""
    values = np.linspace(0.0, 100.0, len(probabilities))
    edges = np.cumsum(probabilities)
    edges[-1] = 1.0
    return lambda rng, shape: values[np.searchsorted(edges, rng.random(shape), side="right")]


def _first(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    hit = mask.any(axis=1)
    first: NDArray[np.int64] = np.where(hit, mask.argmax(axis=1) + 1, NO_DECISION).astype(np.int64)
    return first


def _arm_paths(
    values: NDArray[np.float64], mine: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    n = np.cumsum(mine, axis=1).astype(np.float64)
    total = np.cumsum(np.where(mine, values, 0.0), axis=1)
    squares = np.cumsum(np.where(mine, values * values, 0.0), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, 0.0)
    ss = np.maximum(squares - total * mean, 0.0)
    return n, mean, ss


def draw(
    rng: np.random.Generator, runs: int, horizon: int, share: float, control: Draw, challenger: Draw
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Which arm each score goes to (True: the challenger), and the scores, run by run."""
    to_challenger = rng.random((runs, horizon)) < share
    values = np.where(
        to_challenger, challenger(rng, (runs, horizon)), control(rng, (runs, horizon))
    )
    return to_challenger, values


def decide(
    to_challenger: NDArray[np.bool_],
    values: NDArray[np.float64],
    *,
    alpha: float = 0.05,
    mixture_sd: float = 10.0,
    min_scores: int = 10,
) -> Runs:
    """The first look of each run that says "better" or "worse"."""
    n_c, m_c, ss_c = _arm_paths(values, ~to_challenger)
    n_t, m_t, ss_t = _arm_paths(values, to_challenger)
    ready = (n_c >= min_scores) & (n_t >= min_scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        se2 = difference_variance(n_c, m_c, ss_c, n_t, m_t, ss_t)
        half = half_width(se2, mixture_sd, alpha)
        welch = ss_c / (n_c * (n_c - 1)) + ss_t / (n_t * (n_t - 1))
    d = m_t - m_c
    return Runs(
        _first(ready & (d - half > 0)),
        _first(ready & (d + half < 0)),
        _first(ready & (np.abs(d) > 1.959964 * np.sqrt(welch))),
    )


def simulate(
    seed: int,
    runs: int,
    horizon: int,
    share: float,
    control: Draw,
    challenger: Draw,
    *,
    alpha: float = 0.05,
    mixture_sd: float = 10.0,
    min_scores: int = 10,
    chunk: int = 250,
) -> Runs:
    """`runs` seeded releases of `horizon` scores each, in chunks to bound the memory."""
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, runs, chunk):
        to_challenger, values = draw(
            rng, min(chunk, runs - start), horizon, share, control, challenger
        )
        parts.append(
            decide(to_challenger, values, alpha=alpha, mixture_sd=mixture_sd, min_scores=min_scores)
        )
    return Runs(
        np.concatenate([p.first_better for p in parts]),
        np.concatenate([p.first_worse for p in parts]),
        np.concatenate([p.naive_first for p in parts]),
    )
