"""Turning stored requests and prompts into what pages show: conversations, diffs, charts.

Pure functions over plain data; the JSON twin returns their output too. Nothing here escapes
HTML: templates do (autoescape), and the charts are drawn by a template from numbers.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

__all__ = [
    "EXCERPT_CHARACTERS",
    "bar_chart",
    "blueprint_messages",
    "blueprint_text",
    "conversation",
    "excerpt",
    "ordered_tags",
    "unified_diff",
]

EXCERPT_CHARACTERS = 80
"""How much of a request's input and output the list shows."""

# The order the README documents for the tags a traced call carries; other tags follow,
# alphabetically.
_TAG_ORDER = ("route", "endpoint", "chain", "prompt", "prompt_version", "prompt_label",
              "release", "arm")


def _text_of(content: Any) -> tuple[str, list[Any]]:
    """The text of a message's content (string or typed parts) and its non-text parts."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if isinstance(content, list):
        texts, other = [], []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                texts.append(part)
            else:
                other.append(part)
        return "\n".join(texts), other
    return "", [content]


def _message(role: Any, content: Any, message: dict[str, Any]) -> dict[str, Any]:
    text, other = _text_of(content)
    extra = {k: v for k, v in message.items() if k in ("tool_calls", "function_call", "name")}
    if other:
        extra["content"] = other
    return {"role": str(role or "message"), "text": text, "extra": extra or None}


def _messages_of(value: Any, *, default_role: str) -> list[dict[str, Any]] | None:
    """Messages from a blueprint, provider kwargs or a provider response; None if unknown."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("messages"), list):
        return [
            _message(m.get("role"), m.get("content"), m)
            if isinstance(m, dict)
            else _message(default_role, str(m), {})
            for m in value["messages"]
        ]
    if value.get("type") == "completion" or "prompt" in value:
        content = value.get("content", value.get("prompt"))
        return [_message(default_role, content, {})]
    if isinstance(value.get("choices"), list):
        found = []
        for choice in value["choices"]:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                found.append(_message(message.get("role"), message.get("content"), message))
            elif "text" in choice:
                found.append(_message(default_role, choice["text"], {}))
        return found
    return None


def conversation(input_: Any, output: Any) -> list[dict[str, Any]]:
    """Input then output as a list of {role, text, extra, side}; raw JSON when unrecognised."""
    turns: list[dict[str, Any]] = []
    for side, value, role in (("input", input_, "user"), ("output", output, "assistant")):
        messages = _messages_of(value, default_role=role)
        if messages is None:
            messages = [{"role": side, "text": json.dumps(value, indent=2), "extra": None}]
        turns.extend({**m, "side": side} for m in messages)
    return turns


def excerpt(value: Any, *, side: str) -> str:
    """A one-line excerpt of a request's input (its last user turn) or output (its first
    turn): the list shows what was asked and answered without opening the request."""
    messages = _messages_of(value, default_role="user" if side == "input" else "assistant")
    if not messages:
        return ""
    if side == "input":
        users = [m for m in messages if m["role"] in ("user", "human")]
        message = (users or messages)[-1]
    else:
        message = messages[0]
    text = " ".join(message["text"].split())
    if not text and message["extra"]:
        calls = message["extra"].get("tool_calls") or []
        names = [c.get("function", {}).get("name") or c.get("name") for c in calls
                 if isinstance(c, dict)]
        text = f"[tool call: {', '.join(str(n) for n in names)}]" if names else ""
    return text if len(text) <= EXCERPT_CHARACTERS else text[: EXCERPT_CHARACTERS - 1] + "…"


def ordered_tags(tags: list[str]) -> list[str]:
    """`tags` in the documented order (route, endpoint, chain, prompt, ...), then the rest
    alphabetically: the store keeps a set, not the order the log sent."""
    rank = {prefix: i for i, prefix in enumerate(_TAG_ORDER)}

    def key(tag: str) -> tuple[int, str]:
        prefix, colon, _ = tag.partition(":")
        return (rank.get(prefix, len(rank)) if colon else len(rank), tag)

    return sorted(tags, key=key)


def blueprint_messages(blueprint: Any) -> list[dict[str, Any]] | None:
    """A version's messages as conversation turns, or None when the blueprint is unusual."""
    messages = _messages_of(blueprint, default_role="prompt")
    return None if messages is None else [{**m, "side": "input"} for m in messages]


def blueprint_text(blueprint: Any, metadata: Any) -> str:
    """A version as text for diffing: each message under its role, then the metadata."""
    lines: list[str] = []
    messages = _messages_of(blueprint, default_role="prompt")
    if messages is None:
        lines.append(json.dumps(blueprint, indent=2, sort_keys=True))
    for message in messages or []:
        lines.append(f"[{message['role']}]")
        lines.append(message["text"])
        if message["extra"]:
            lines.append(json.dumps(message["extra"], indent=2, sort_keys=True))
        lines.append("")
    if isinstance(blueprint, dict) and blueprint.get("input_variables"):
        lines.append(f"input variables: {', '.join(map(str, blueprint['input_variables']))}")
    lines.append("[metadata]")
    lines.append(json.dumps(metadata, indent=2, sort_keys=True))
    return "\n".join(lines)


def unified_diff(old: str, new: str, *, old_name: str, new_name: str) -> list[dict[str, str]]:
    """Lines of a unified diff, each {kind: context|added|removed|hunk|file, text}."""
    kinds = {"+": "added", "-": "removed", "@": "hunk", " ": "context"}
    result = []
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_name, tofile=new_name, lineterm=""
    )
    for line in diff:
        kind = "file" if line.startswith(("+++", "---")) else kinds.get(line[:1], "context")
        result.append({"kind": kind, "text": line})
    return result


def bar_chart(
    points: list[tuple[str, float | None]],
    *,
    maximum: float | None = None,
    width: int = 480,
    height: int = 170,
    unit: str = "",
) -> dict[str, Any]:
    """Geometry of a bar chart (in SVG user units) for the `_bar_chart.html` partial."""
    left, bottom, top = 56, 22, 16
    plot_w, plot_h = width - left - 8, height - bottom - top
    values = [v for _, v in points if v is not None]
    top_value = maximum if maximum is not None else max(values, default=0.0)
    top_value = top_value or 1.0
    slot = plot_w / max(len(points), 1)
    bar_w = max(2.0, min(48.0, slot * 0.7))
    # At most one axis label per ~56 units, so dates never overlap.
    label_every = max(1, math.ceil(len(points) / max(1, plot_w // 56)))
    bars = []
    for i, (label, value) in enumerate(points):
        h = 0.0 if value is None else plot_h * min(value, top_value) / top_value
        x = left + i * slot + (slot - bar_w) / 2
        bars.append(
            {
                "x": round(x, 1),
                "y": round(top + plot_h - h, 1),
                "w": round(bar_w, 1),
                "h": round(h, 1),
                "cx": round(x + bar_w / 2, 1),
                "label": label if i % label_every == 0 else "",
                "title": f"{label}: " + ("no data" if value is None else _number(value) + unit),
                "value_text": "" if value is None or len(points) > 16 else _number(value),
            }
        )
    ticks = [
        {"y": round(top + plot_h - plot_h * k / 4, 1), "text": _number(top_value * k / 4) + unit}
        for k in range(5)
    ]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - 8,
        "baseline": top + plot_h,
        "label_y": height - 6,
        "bars": bars,
        "ticks": ticks,
        "empty": not any(values),
    }


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
