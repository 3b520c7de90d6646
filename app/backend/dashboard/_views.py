"""What each dashboard page shows, as plain data: the JSON twin returns it as is, the HTML page
renders it. Builders run on the store's reader pool (they take a connection).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from app.backend.dashboard._filters import RequestFilters
from app.backend.dashboard._present import (
    blueprint_messages,
    blueprint_text,
    conversation,
    unified_diff,
)
from app.backend.dashboard._prompt_queries import (
    LATENCY_SAMPLE,
    get_template,
    list_template_versions,
    list_templates,
    requests_per_day,
    served_by,
    version_stats,
)
from app.backend.dashboard._request_queries import (
    FREE_TEXT_WINDOW,
    list_requests,
    request_detail,
)
from app.backend.errors import NotFound

__all__ = ["diff_view", "jsonable", "prompt_view", "prompts_view", "request_view", "requests_view"]

ACTIVITY_DAYS = 14


def jsonable(value: Any) -> Any:
    """`value` with datetimes as ISO-8601 UTC strings and tuples as lists (JSON-ready)."""
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def requests_view(connection: sa.Connection, *, filters: RequestFilters) -> dict[str, Any]:
    """The request list page: one page of rows and the cursors of its neighbours."""
    page = list_requests(connection, filters=filters)
    return {
        "requests": page.rows,
        "older_than": page.older_than,
        "newer_than": page.newer_than,
        "free_text_window": FREE_TEXT_WINDOW if filters.q else None,
        "searched_window_only": page.searched_window,
        "filters": dict(filters.as_params(before=None, after=None)),
    }


def request_view(connection: sa.Connection, *, request_id: int) -> dict[str, Any]:
    """One request in full, with its input and output as a conversation."""
    detail = request_detail(connection, request_id=request_id)
    if detail is None:
        raise NotFound(f"request {request_id} not found")
    detail["conversation"] = conversation(detail["input"], detail["output"])
    detail["metadata"] = {
        k: v for k, v in (detail["metadata"] or {}).items() if not k.startswith("feedback_comment:")
    }
    return {"request": detail}


def prompts_view(connection: sa.Connection) -> dict[str, Any]:
    """Every template with its versions and labels."""
    return {"prompts": list_templates(connection)}


def _template_or_404(connection: sa.Connection, template_id: int) -> dict[str, Any]:
    template = get_template(connection, template_id=template_id)
    if template is None:
        raise NotFound(f"prompt {template_id} not found")
    return template


def prompt_view(connection: sa.Connection, *, template_id: int) -> dict[str, Any]:
    """A template: its versions (labels, commit messages) with statistics, and its activity."""
    template = _template_or_404(connection, template_id)
    versions = list_template_versions(connection, template_id=template_id)
    ids = [v["id"] for v in versions]
    stats = version_stats(connection, version_ids=ids)
    for version in versions:
        version["stats"] = stats[version["id"]]
        version["messages"] = blueprint_messages(version["prompt_template"])
    score_names = sorted({n for s in stats.values() for n in s["scores"]})
    today = datetime.now(UTC).date()
    activity = requests_per_day(connection, version_ids=ids, days=ACTIVITY_DAYS, today=today)
    oldest_first = versions[::-1]
    score_series = {
        name: [
            (f"v{v['version']}", (v["stats"]["scores"].get(name) or {}).get("average"))
            for v in oldest_first
        ]
        for name in score_names
    }
    return {
        "prompt": template,
        "served_by": served_by(connection, version_ids=ids),
        "versions": versions,
        "score_names": score_names,
        "latency_sample": LATENCY_SAMPLE,
        "requests_per_day": [{"day": d, "requests": n} for d, n in activity],
        # Chart series as [label, value] pairs, oldest version first.
        "charts": {
            "average_score": score_series,
            "p95_ms": [(f"v{v['version']}", v["stats"]["p95_ms"]) for v in oldest_first],
            "requests_per_day": [(d.strftime("%b %d"), n) for d, n in activity],
        },
    }


def diff_view(
    connection: sa.Connection, *, template_id: int, old: int | None, new: int | None
) -> dict[str, Any]:
    """The diff between two versions of a template (default: the two latest)."""
    template = _template_or_404(connection, template_id)
    versions = {
        v["version"]: v for v in list_template_versions(connection, template_id=template_id)
    }
    numbers = sorted(versions)
    if not numbers:
        raise NotFound(f"prompt {template_id} has no versions")
    new = new if new is not None else numbers[-1]
    old = old if old is not None else (numbers[-2] if len(numbers) > 1 else numbers[-1])
    for number in (old, new):
        if number not in versions:
            raise NotFound(f"prompt {template_id} has no version {number}")
    a, b = versions[old], versions[new]
    lines = unified_diff(
        blueprint_text(a["prompt_template"], a["metadata"]),
        blueprint_text(b["prompt_template"], b["metadata"]),
        old_name=f"{template['name']}@{old}",
        new_name=f"{template['name']}@{new}",
    )
    return {
        "prompt": template,
        "old": {k: a[k] for k in ("version", "commit_message", "created_at", "labels")},
        "new": {k: b[k] for k in ("version", "commit_message", "created_at", "labels")},
        "versions": numbers,
        "diff": lines,
    }
