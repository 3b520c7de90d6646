"""Small statistics for noisy, shared machines: medians and spreads, never means alone."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["median", "pct", "quartile_spread", "spread"]


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """`median [min–max]` of a few rounds."""
    if not values:
        return "n/a"
    return (f"{fmt.format(median(values))} "
            f"[{fmt.format(min(values))}–{fmt.format(max(values))}]")


def quartile_spread(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """`median [first–third quartile]` of many rounds (one value: itself three times)."""
    if not values:
        return "n/a"
    q1, mid, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{fmt.format(mid)} [{fmt.format(q1)}–{fmt.format(q3)}]"
