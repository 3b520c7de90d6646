"""Queries of the prompt pages: templates, versions and labels, and statistics per version.

Keyword-only functions taking a connection. Counts, error rates and average scores are exact
(the (prompt_version_id, status) index makes counting a covering index scan); latency
percentiles are over the LATENCY_SAMPLE most recent requests of each version, so one page
costs the same at a thousand requests as at millions.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.backend.store.schema import prompt_templates as T
from app.backend.store.schema import prompt_versions as V
from app.backend.store.schema import release_labels as L
from app.backend.store.schema import request_tags as RT
from app.backend.store.schema import requests as R
from app.backend.store.schema import scores as S

__all__ = [
    "LATENCY_SAMPLE",
    "get_template",
    "list_templates",
    "list_template_versions",
    "requests_per_day",
    "served_by",
    "version_stats",
]

LATENCY_SAMPLE = 10_000
SERVED_BY_SAMPLE = 1_000
"""How many of a template's latest requests say which routes serve it (bounded cost)."""
_MAX_TEMPLATES = 500


def list_templates(connection: sa.Connection) -> list[dict[str, Any]]:
    """Every template (newest first, at most _MAX_TEMPLATES): versions and labels."""
    counts = (
        sa.select(
            V.c.template_id,
            sa.func.count().label("versions"),
            sa.func.max(V.c.version).label("latest_version"),
            sa.func.max(V.c.created_at).label("updated_at"),
        )
        .group_by(V.c.template_id)
        .subquery()
    )
    query = (
        sa.select(T.c.id, T.c.name, T.c.tags, T.c.created_at, counts)
        .join(counts, counts.c.template_id == T.c.id, isouter=True)
        .order_by(T.c.name)
        .limit(_MAX_TEMPLATES)
    )
    templates = [r._asdict() for r in connection.execute(query)]
    labels = _labels(connection, [t["id"] for t in templates])
    for template in templates:
        template.pop("template_id", None)
        template["labels"] = labels.get(template["id"], {})
    return templates


def _labels(connection: sa.Connection, template_ids: list[int]) -> dict[int, dict[str, int]]:
    if not template_ids:
        return {}
    query = (
        sa.select(L.c.template_id, L.c.label, V.c.version)
        .join(V, V.c.id == L.c.version_id)
        .where(L.c.template_id.in_(template_ids))
        .order_by(L.c.label)
    )
    found: dict[int, dict[str, int]] = {}
    for template_id, label, version in connection.execute(query):
        found.setdefault(template_id, {})[label] = version
    return found


def get_template(connection: sa.Connection, *, template_id: int) -> dict[str, Any] | None:
    """One template's own fields, or None."""
    row = connection.execute(
        sa.select(T.c.id, T.c.name, T.c.tags, T.c.created_at).where(T.c.id == template_id)
    ).first()
    return row._asdict() if row is not None else None


def list_template_versions(connection: sa.Connection, *, template_id: int) -> list[dict[str, Any]]:
    """A template's versions, newest first, each with its blueprint and labels."""
    rows = connection.execute(
        sa.select(
            V.c.id,
            V.c.version,
            V.c.prompt_template,
            V.c.metadata,
            V.c.commit_message,
            V.c.created_at,
        )
        .where(V.c.template_id == template_id)
        .order_by(V.c.version.desc())
    )
    versions = [r._asdict() for r in rows]
    labels: dict[int, list[str]] = {}
    query = sa.select(L.c.version_id, L.c.label).where(L.c.template_id == template_id)
    for version_id, label in connection.execute(query.order_by(L.c.label)):
        labels.setdefault(version_id, []).append(label)
    for version in versions:
        version["labels"] = labels.get(version["id"], [])
    return versions


def _latency_expression(connection: sa.Connection) -> sa.ColumnElement[Any]:
    start, end = R.c.request_start_time, R.c.request_end_time
    if connection.dialect.name == "postgresql":
        return sa.extract("epoch", end - start) * 1000.0
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86_400_000.0


def _percentiles(connection: sa.Connection, version_id: int) -> tuple[float | None, float | None]:
    sample = (
        sa.select(_latency_expression(connection).label("ms"))
        .where(R.c.prompt_version_id == version_id)
        .order_by(R.c.id.desc())
        .limit(LATENCY_SAMPLE)
        .subquery()
    )
    if connection.dialect.name == "postgresql":
        query = sa.select(
            sa.func.percentile_cont(0.5).within_group(sample.c.ms),
            sa.func.percentile_cont(0.95).within_group(sample.c.ms),
        )
        p50, p95 = connection.execute(query).one()
        return (float(p50), float(p95)) if p50 is not None else (None, None)
    values = sorted(max(0.0, v) for v in connection.scalars(sa.select(sample.c.ms)))
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    # method="inclusive" is linear interpolation, as percentile_cont does.
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


def version_stats(
    connection: sa.Connection, *, version_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """Per version: requests, errors, error rate, p50/p95 latency (ms), scores by name."""
    stats: dict[int, dict[str, Any]] = {
        v: {"requests": 0, "errors": 0, "error_rate": None, "scores": {}} for v in version_ids
    }
    if not version_ids:
        return stats
    counts = (
        sa.select(R.c.prompt_version_id, R.c.status, sa.func.count())
        .where(R.c.prompt_version_id.in_(version_ids))
        .group_by(R.c.prompt_version_id, R.c.status)
    )
    for version_id, status, count in connection.execute(counts):
        stats[version_id]["requests"] += count
        if status == "ERROR":
            stats[version_id]["errors"] += count
    score_rows = (
        sa.select(R.c.prompt_version_id, S.c.name, sa.func.avg(S.c.score), sa.func.count())
        .join(R, R.c.id == S.c.request_id)
        .where(R.c.prompt_version_id.in_(version_ids))
        .group_by(R.c.prompt_version_id, S.c.name)
        .order_by(S.c.name)
    )
    for version_id, name, average, count in connection.execute(score_rows):
        stats[version_id]["scores"][name] = {"average": float(average), "count": count}
    for version_id, item in stats.items():
        if item["requests"]:
            item["error_rate"] = item["errors"] / item["requests"]
            item["p50_ms"], item["p95_ms"] = _percentiles(connection, version_id)
        else:
            item["p50_ms"] = item["p95_ms"] = None
        item["latency_sample"] = min(item["requests"], LATENCY_SAMPLE)
    return stats


def requests_per_day(
    connection: sa.Connection, *, version_ids: list[int], days: int, today: date
) -> list[tuple[date, int]]:
    """Requests per day (UTC, by start time) of these versions over the last `days` days."""
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time())
    if connection.dialect.name == "postgresql":
        day: Any = sa.cast(R.c.request_start_time, sa.Date)
    else:
        day = sa.func.date(R.c.request_start_time)
    query = (
        sa.select(day.label("day"), sa.func.count())
        .where(R.c.prompt_version_id.in_(version_ids), R.c.request_start_time >= start)
        .group_by(day)
    )
    found: dict[str, int] = {}
    if version_ids:
        found = {str(d): n for d, n in connection.execute(query)}
    series = [start.date() + timedelta(days=i) for i in range(days)]
    return [(d, found.get(d.isoformat(), 0)) for d in series]


def served_by(connection: sa.Connection, *, version_ids: list[int]) -> list[dict[str, Any]]:
    """The chains (routes) that serve a template, as its latest requests show them: each
    route with the version its latest request was given, newest first.

    The backend knows chains only from their logs' `route:` tags, so a route whose last use
    is older than the SERVED_BY_SAMPLE latest requests is not listed.
    """
    if not version_ids:
        return []
    latest = (
        sa.select(R.c.id, R.c.prompt_version_id, R.c.request_start_time)
        .where(R.c.prompt_version_id.in_(version_ids))
        .order_by(R.c.id.desc())
        .limit(SERVED_BY_SAMPLE)
        .subquery()
    )
    query = (
        sa.select(RT.c.tag, V.c.version, latest.c.request_start_time)
        .join(latest, latest.c.id == RT.c.request_id)
        .join(V, V.c.id == latest.c.prompt_version_id)
        .where(RT.c.tag.startswith("route:"))
        .order_by(latest.c.id.desc())
    )
    routes: dict[str, dict[str, Any]] = {}
    for tag, version, at in connection.execute(query):
        routes.setdefault(tag[6:], {"route": tag[6:], "version": version, "last_request": at})
    return list(routes.values())
