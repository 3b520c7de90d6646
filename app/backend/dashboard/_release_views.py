"""What the release pages show, as plain data, built from the releases service's answers.

The service (`app.releases.service`) answers in the contract's JSON shapes
(docs/RELEASES.md); these builders only arrange them for a page: arms side by side with
their weights, each challenger's verdict in words, the history in words. The JSON twin
returns the same dict, so a script sees exactly what the page shows. Pure functions over
plain data, unit-testable without a backend; nothing here escapes HTML (templates do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.releases.describe import ACTIONS, arms_text, segments_text, state_text

__all__ = ["release_view", "releases_view"]

# The arm figures a page shows, copied from the judgement's ArmSummary dicts.
_ARM_FIGURES = (
    "name",
    "requests",
    "errors",
    "error_rate",
    "error_rate_interval",
    "feedback",
    "mean_score",
    "mean_score_interval",
    "score_sd",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens_total",
    "tokens_mean",
    "confidence",
)


_SPLIT_DEFAULTS: dict[str, Any] = {
    "template": None,
    "label": None,
    "control": None,
    "arms": [],
    "segments": None,
    "guardrail": False,
    "alpha": None,
    "started_at": None,
    "release_id": None,
}


def _split(split: Mapping[str, Any]) -> dict[str, Any]:
    """The split with every contract field present (templates are strict about names)."""
    return {**_SPLIT_DEFAULTS, **split}


def releases_view(releases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The splits in force, each with its arms in words."""
    return {
        "releases": [
            {
                **_split(split),
                "arms_text": arms_text(split.get("arms") or [], split.get("control")),
                "segments_text": segments_text(split.get("segments")),
            }
            for split in releases
        ]
    }


def _weights(split: Mapping[str, Any]) -> dict[int, int]:
    return {int(arm["version"]): int(arm["weight"]) for arm in split.get("arms") or []}


def _arms(split: Mapping[str, Any], judgement: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per arm of the split, control first, with its weight and figures."""
    weights = _weights(split)
    control = split.get("control")
    summaries = {int(a["version"]): a for a in (judgement or {}).get("arms") or []}
    arms = []
    for version, weight in weights.items():
        summary = summaries.get(version, {})
        role = summary.get("role") or ("control" if version == control else "challenger")
        figures = {key: summary.get(key) for key in _ARM_FIGURES}
        figures["name"] = figures["name"] or f"v{version}"
        arms.append({"version": version, "role": role, "weight": weight, **figures})
    arms.sort(key=lambda arm: (arm["role"] != "control", arm["version"]))
    return arms


def _comparisons(judgement: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each challenger's verdict and its explanation, with the figures behind them."""
    found = []
    for item in (judgement or {}).get("comparisons") or []:
        comparison = item.get("comparison") or {}
        found.append(
            {
                "version": item.get("version"),
                "verdict": item.get("verdict"),
                "explanation": item.get("explanation"),
                "difference": comparison.get("difference"),
                "interval": comparison.get("interval"),
                "p_value": comparison.get("p_value"),
                "further_scores": comparison.get("further_scores"),
                "inconsistent": comparison.get("inconsistent", False),
            }
        )
    return found


def _reason(row: Mapping[str, Any]) -> str | None:
    """Why a change happened, when the row says (the guardrail's rollbacks do)."""
    reason = row.get("reason")
    after = row.get("after")
    if reason is None and isinstance(after, Mapping):
        reason = after.get("reason")
    return None if reason is None else str(reason)


def _history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History rows, newest first, with their action and states in words."""
    rows = [
        {
            "at": None,
            "by": None,
            **row,
            "reason": _reason(row),
            "action_text": ACTIONS.get(str(row.get("action")), str(row.get("action"))),
            "before_text": state_text(row.get("before")),
            "after_text": state_text(row.get("after")),
        }
        for row in history
    ]
    rows.sort(key=lambda row: str(row.get("at") or ""), reverse=True)
    return rows


def release_view(
    *,
    template: str,
    label: str,
    release: Mapping[str, Any],
    judgement: Mapping[str, Any] | None,
    prompt_id: int | None,
) -> dict[str, Any]:
    """One release label: its split and arms, the verdicts, the chart's series, the history.

    `release` is the service's `{"split", "version", "history"}`, `judgement` its
    `{"split", "arms", "comparisons", "series"}` (None when the label is not split), and
    `prompt_id` the template's id for the link to its prompt page (None when unknown).
    """
    split = _split(release["split"]) if release.get("split") else None
    comparisons = _comparisons(judgement)
    verdicts = {c["version"]: c["verdict"] for c in comparisons}
    arms = _arms(split, judgement) if split else []
    for arm in arms:
        arm["verdict"] = verdicts.get(arm["version"])
    return {
        "template": template,
        "label": label,
        "prompt_id": prompt_id,
        "split": split,
        "split_text": arms_text(split.get("arms") or [], split.get("control")) if split else None,
        "segments_text": segments_text(split.get("segments")) if split else "",
        "version": release.get("version"),
        "arms": arms,
        "comparisons": comparisons,
        "series": list((judgement or {}).get("series") or []),
        "history": _history(release.get("history") or []),
    }
