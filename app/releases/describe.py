"""Releases in words: one line for a split, a label's state or a history row.

The command line and the dashboard say the same thing the same way, from the contract's
JSON shapes (docs/RELEASES.md) as plain dicts, so both read the API's answers as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ACTIONS", "arms_text", "number_text", "segments_text", "split_text", "state_text"]

# What each history action means, for a person.
ACTIONS = {
    "move": "label moved",
    "split": "split set",
    "promote": "promoted",
    "rollback": "rolled back",
    "guardrail_rollback": "rolled back by the guardrail",
    "end": "split ended",
}


def arms_text(arms: Sequence[Mapping[str, Any]], control: int | None = None) -> str:
    """`v3 50 % (control) · v4 50 %`."""
    parts = []
    for arm in arms:
        text = f"v{arm['version']} {arm['weight']} %"
        if control is not None and arm["version"] == control:
            text += " (control)"
        parts.append(text)
    return " · ".join(parts)


def segments_text(segments: Mapping[str, Any] | None) -> str:
    """`plan=pro: v4 100 %; plan=team: v3 20 % · v4 80 %`, or "" without segments."""
    if not segments:
        return ""
    key = segments.get("key", "?")
    values: Mapping[str, Any] = segments.get("values") or {}
    return "; ".join(f"{key}={value}: {arms_text(arms)}" for value, arms in values.items())


def split_text(split: Mapping[str, Any]) -> str:
    """A split in one line: its arms, segments and guardrail."""
    text = "split " + arms_text(split.get("arms") or [], split.get("control"))
    segments = segments_text(split.get("segments"))
    if segments:
        text += f"; segments {segments}"
    if split.get("guardrail"):
        text += "; guardrail on"
    return text


def state_text(state: Mapping[str, Any] | None) -> str:
    """A label's state as history rows hold it: `v3`, a split, or "none"."""
    if not state:
        return "none"
    if "arms" in state:
        return split_text(state)
    if state.get("version") is not None:
        return f"v{state['version']}"
    return "none"


def number_text(value: float | None, digits: int = 1, unit: str = "") -> str:
    """A number for a table cell; "–" when unknown."""
    return "–" if value is None else f"{value:.{digits}f}{unit}"
