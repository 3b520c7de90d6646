"""Geometry of the release page's chart: each arm's cumulative mean score over time, with its
95 % interval as a band, drawn by `_score_chart.html` as inline SVG.

The judgement's `series` holds, per arm, points in time with the mean score of the feedback
so far and its interval (docs/RELEASES.md). The chart draws one `<path>` per arm for the
mean and one `<polygon>` per arm for the band, so arms stay apart however they cross; the
vertical axis spans what the intervals need (not always 0–100), since differences of a few
points are the ones worth seeing. Pure numbers out; the template writes the SVG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ARM_COLOURS", "SeriesPoint", "score_chart", "series_points"]

# Control first: a quiet slate, then distinct hues for challengers (colour-blind-safe order).
ARM_COLOURS = ("#51606f", "#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00")
# About the size it is shown at on a wide page, so its text stays at the page's size.
_WIDTH, _HEIGHT = 960, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 16, 30, 30


@dataclass(frozen=True)
class SeriesPoint:
    """One point of an arm's series: when, the mean so far, its interval, how many scores."""

    at: datetime
    mean: float
    low: float | None
    high: float | None
    feedback: int | None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def series_points(points: Sequence[Mapping[str, Any]]) -> list[SeriesPoint]:
    """An arm's points, oldest first, skipping any without a time or a mean.

    The interval may come as `interval: {low, high}` or flat `low`/`high`; the mean as
    `mean` or `mean_score`, the count as `feedback` or `n`.
    """
    found = []
    for point in points:
        at = _time(point.get("at"))
        mean = _number(point.get("mean", point.get("mean_score")))
        if at is None or mean is None:
            continue
        interval = point.get("interval") or point.get("mean_score_interval") or {}
        low = _number(interval.get("low", point.get("low")))
        high = _number(interval.get("high", point.get("high")))
        count = point.get("feedback", point.get("n"))
        found.append(SeriesPoint(at, mean, low, high, int(count) if count is not None else None))
    found.sort(key=lambda p: p.at)
    return found


def _y_range(arms: Sequence[Sequence[SeriesPoint]]) -> tuple[float, float, float]:
    """The axis' bottom, top and tick step: round numbers around every mean and interval."""
    values = [v for pts in arms for p in pts for v in (p.mean, p.low, p.high) if v is not None]
    low, high = min(values), max(values)
    step = 10.0 if high - low <= 50 else 20.0
    bottom = max(0.0, (low // step) * step)
    top = min(100.0, -((-high) // step) * step)
    if top <= bottom:
        bottom, top = max(0.0, top - step), max(step, bottom + step)
    return bottom, top, step


def _label(at: datetime, span_seconds: float) -> str:
    return at.strftime("%b %d") if span_seconds > 3 * 86400 else at.strftime("%b %d %H:%M")


def score_chart(series: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Chart geometry for `_score_chart.html` from the judgement's `series`.

    Each entry of `series` is an arm: `{"version", "role"?, "points": [...]}`.
    """
    arms = [
        (entry, series_points(entry.get("points") or []))
        for entry in sorted(series, key=lambda e: (e.get("role") != "control", e.get("version")))
    ]
    drawn = [pts for _, pts in arms if pts]
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    chart: dict[str, Any] = {
        "width": _WIDTH,
        "height": _HEIGHT,
        "left": _LEFT,
        "right": _WIDTH - _RIGHT,
        "top": _TOP,
        "baseline": _TOP + plot_h,
        "label_y": _HEIGHT - _BOTTOM + 16,
        "empty": not drawn,
        "arms": [],
        "y_ticks": [],
        "x_ticks": [],
    }
    if not drawn:
        return chart
    start = min(p.at for pts in drawn for p in pts)
    end = max(p.at for pts in drawn for p in pts)
    span = (end - start).total_seconds()
    bottom, top, step = _y_range(drawn)

    def x(at: datetime) -> float:
        share = 0.5 if span <= 0 else (at - start).total_seconds() / span
        return round(_LEFT + share * plot_w, 1)

    def y(value: float) -> float:
        return round(_TOP + plot_h * (top - value) / (top - bottom), 1)

    for index, (entry, pts) in enumerate(arms):
        colour = ARM_COLOURS[index % len(ARM_COLOURS)]
        name = f"v{entry.get('version')}"
        role = entry.get("role") or ""
        banded = [p for p in pts if p.low is not None and p.high is not None]
        band = [(x(p.at), y(p.high)) for p in banded if p.high is not None]
        band += [(x(p.at), y(p.low)) for p in reversed(banded) if p.low is not None]
        chart["arms"].append(
            {
                "version": entry.get("version"),
                "name": name,
                "role": role,
                "colour": colour,
                "path": " ".join(
                    f"{'M' if i == 0 else 'L'}{x(p.at)},{y(p.mean)}" for i, p in enumerate(pts)
                ),
                "band": " ".join(f"{bx},{by}" for bx, by in band) if len(banded) > 1 else "",
                "dots": [
                    {
                        "x": x(p.at),
                        "y": y(p.mean),
                        "y_low": None if p.low is None else y(p.low),
                        "y_high": None if p.high is None else y(p.high),
                        "title": _dot_title(name, p),
                    }
                    for p in pts
                ],
                # One point has no band to draw: its interval shows as a whisker instead.
                "whiskers": len(banded) == 1,
                "legend_x": _LEFT + 8 + index * 150,
            }
        )
    ticks = round((top - bottom) / step)
    chart["y_ticks"] = [
        {"y": y(bottom + step * k), "text": f"{bottom + step * k:g}"} for k in range(ticks + 1)
    ]
    moments = [start] if span <= 0 else [start + (end - start) * (k / 4) for k in range(5)]
    chart["x_ticks"] = [{"x": x(at), "text": _label(at, span)} for at in moments]
    return chart


def _dot_title(name: str, point: SeriesPoint) -> str:
    text = f"{name} · {point.at.strftime('%Y-%m-%d %H:%M')} UTC: mean {point.mean:.1f}"
    if point.low is not None and point.high is not None:
        text += f" (95 % interval {point.low:.1f}–{point.high:.1f})"
    if point.feedback is not None:
        text += f", {point.feedback} scores"
    return text
