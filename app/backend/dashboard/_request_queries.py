"""Queries of the request pages: the filtered, newest-first list and one request in full.

Keyword-only functions taking a connection. The list is keyset-paged on `id` (never OFFSET,
never COUNT over the table): it fetches one row more than the page to know if there is more.
With a tag filter the list is driven by the `request_tags (tag, request_id)` primary key,
read backwards, so a page costs the same for a common tag and a rare one; every other filter
narrows that walk. Free text is bounded: it searches only the FREE_TEXT_WINDOW most recent
requests that match the other filters (below the cursor); when those run out before the page
fills, the page says how far it searched and links to the next window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.backend.dashboard._filters import RequestFilters
from app.backend.dashboard._present import excerpt, ordered_tags
from app.backend.store.schema import prompt_templates as T
from app.backend.store.schema import prompt_versions as V
from app.backend.store.schema import request_tags as RT
from app.backend.store.schema import requests as R
from app.backend.store.schema import scores as S

__all__ = [
    "FREE_TEXT_WINDOW",
    "RequestPage",
    "group_requests",
    "latency_ms",
    "list_requests",
    "request_detail",
    "summaries",
]

FREE_TEXT_WINDOW = 5_000
_GROUP_LIMIT = 100

_ROW_COLUMNS = (
    R.c.id,
    R.c.request_start_time,
    R.c.request_end_time,
    R.c.model,
    R.c.provider,
    R.c.status,
    R.c.input_tokens,
    R.c.output_tokens,
    R.c.prompt_version_id,
    R.c.group_id,
)


@dataclass(frozen=True, slots=True)
class RequestPage:
    """One page of the list, newest first, and where the neighbouring pages start."""

    rows: list[dict[str, Any]]
    older_than: int | None
    newer_than: int | None
    searched_window: bool


def latency_ms(start: datetime, end: datetime) -> float:
    """Milliseconds from start to end (never negative)."""
    return max(0.0, (end - start).total_seconds() * 1000.0)


def _prompt_condition(connection: sa.Connection, f: RequestFilters) -> sa.ColumnElement[bool]:
    template_id = connection.scalar(sa.select(T.c.id).where(T.c.name == f.prompt))
    if template_id is None:
        return sa.false()
    versions = sa.select(V.c.id).where(V.c.template_id == template_id)
    if f.version is not None:
        version_id = connection.scalar(versions.where(V.c.version == f.version))
        return R.c.prompt_version_id == version_id if version_id else sa.false()
    # A literal list (a template has few versions) lets the (prompt_version_id, id) index serve.
    ids = list(connection.scalars(versions))
    return R.c.prompt_version_id.in_(ids) if ids else sa.false()


def _conditions(
    connection: sa.Connection, f: RequestFilters, tags: list[str]
) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if f.prompt is not None:
        where.append(_prompt_condition(connection, f))
    if f.status is not None:
        where.append(R.c.status == f.status)
    if f.since is not None:
        where.append(R.c.request_start_time >= f.since)
    if f.until is not None:
        where.append(R.c.request_start_time <= f.until)
    if f.has_score_filter():
        score = sa.select(S.c.id).where(S.c.request_id == R.c.id)
        if f.score_name:
            score = score.where(S.c.name == f.score_name)
        if f.score_min is not None:
            score = score.where(S.c.score >= f.score_min)
        if f.score_max is not None:
            score = score.where(S.c.score <= f.score_max)
        where.append(score.exists())
    for tag in tags:
        where.append(sa.select(RT.c.tag).where(RT.c.request_id == R.c.id, RT.c.tag == tag).exists())
    return where


def _base(
    connection: sa.Connection, f: RequestFilters, columns: Any, *, newest_first: bool
) -> sa.Select[Any]:
    """SELECT `columns` of matching requests beyond the cursor, in id order, unlimited."""
    tags = f.all_tags()
    query = sa.select(*columns)
    key: Any = R.c.id
    if tags:
        # Drive from the tag index: its (tag, request_id) order is the list's order.
        driver = RT.alias("driver")
        query = query.select_from(driver).join(R, R.c.id == driver.c.request_id)
        query = query.where(driver.c.tag == tags[0])
        key = driver.c.request_id
    query = query.where(*_conditions(connection, f, tags[1:]))
    # The cursor bounds both sides of the join: PostgreSQL may merge-join the tag index with
    # the primary key, and an unbounded side would be read from the newest row down.
    for column in {key, R.c.id}:
        if f.before is not None:
            query = query.where(column < f.before)
        if f.after is not None:
            query = query.where(column > f.after)
    return query.order_by(key.desc() if newest_first else key.asc())


def _text_condition(q: str) -> sa.ColumnElement[bool]:
    needle = q.lower()
    # SQLite keeps JSON ASCII-escaped: look for the escaped spelling too.
    needles = dict.fromkeys([needle, json.dumps(needle)[1:-1]])
    haystacks = [
        sa.func.lower(sa.cast(R.c.input, sa.Text)),
        sa.func.lower(sa.cast(R.c.output, sa.Text)),
        sa.func.lower(R.c.error_message),
    ]
    return sa.or_(*(h.contains(n, autoescape=True) for h in haystacks for n in needles))


def list_requests(connection: sa.Connection, *, filters: RequestFilters) -> RequestPage:
    """A page of requests matching `filters`, newest first."""
    f, limit = filters, filters.limit
    newest_first = f.after is None
    edge: int | None = None
    if f.q is None:
        query = _base(connection, f, _ROW_COLUMNS, newest_first=newest_first)
        rows = [r._asdict() for r in connection.execute(query.limit(limit + 1))]
    else:
        window = _base(connection, f, [R.c.id], newest_first=newest_first)
        window_ids = window.limit(FREE_TEXT_WINDOW).subquery()
        query = (
            sa.select(*_ROW_COLUMNS)
            .where(R.c.id.in_(sa.select(window_ids.c.id)), _text_condition(f.q))
            .order_by(R.c.id.desc() if newest_first else R.c.id.asc())
        )
        rows = [r._asdict() for r in connection.execute(query.limit(limit + 1))]
        if len(rows) <= limit:
            ends = sa.select(
                sa.func.count(), sa.func.min(window_ids.c.id), sa.func.max(window_ids.c.id)
            )
            count, low, high = connection.execute(ends).one()
            if count >= FREE_TEXT_WINDOW:
                # The window ran out before the page filled: the next page starts past it.
                edge = low if newest_first else high
    more = len(rows) > limit or edge is not None
    rows = rows[:limit]
    if not newest_first:
        rows.reverse()
    first, last = (rows[0]["id"], rows[-1]["id"]) if rows else (None, None)
    if newest_first:
        older = (edge if edge is not None else last) if more else None
        newer = None if f.before is None else (first if first is not None else f.before - 1)
    else:
        assert f.after is not None
        older = last if last is not None else f.after + 1
        newer = (edge if edge is not None else first) if more else None
    page_rows = summaries(connection, rows=rows)
    _add_excerpts(connection, page_rows)
    return RequestPage(
        rows=page_rows,
        older_than=older,
        newer_than=newer,
        searched_window=edge is not None,
    )


def _add_excerpts(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Each list row's input and output excerpt (one query for the page's bodies)."""
    if not rows:
        return
    bodies = connection.execute(
        sa.select(R.c.id, R.c.input, R.c.output).where(R.c.id.in_([r["id"] for r in rows]))
    )
    found = {i: (input_, output) for i, input_, output in bodies}
    for row in rows:
        input_, output = found.get(row["id"], (None, None))
        row["input_excerpt"] = excerpt(input_, side="input")
        row["output_excerpt"] = excerpt(output, side="output")


def _prompts_by_version(connection: sa.Connection, version_ids: set[int]) -> dict[int, Any]:
    if not version_ids:
        return {}
    query = (
        sa.select(V.c.id, V.c.version, T.c.id.label("template_id"), T.c.name)
        .join(T, T.c.id == V.c.template_id)
        .where(V.c.id.in_(version_ids))
    )
    return {r.id: r for r in connection.execute(query)}


def summaries(connection: sa.Connection, *, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """List rows completed with latency, tags, route, prompt@version and scores (few queries)."""
    ids = [r["id"] for r in rows]
    tags: dict[int, list[str]] = {i: [] for i in ids}
    scores: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        tag_rows = sa.select(RT.c.request_id, RT.c.tag).where(RT.c.request_id.in_(ids))
        for request_id, tag in connection.execute(tag_rows.order_by(RT.c.tag)):
            tags[request_id].append(tag)
        score_rows = sa.select(S.c.request_id, S.c.name, S.c.score).where(S.c.request_id.in_(ids))
        for request_id, name, score in connection.execute(score_rows.order_by(S.c.name)):
            scores[request_id][name] = score
    prompts = _prompts_by_version(connection, {r["prompt_version_id"] for r in rows} - {None})
    result = []
    for row in rows:
        prompt = prompts.get(row["prompt_version_id"])
        route = next((t[6:] for t in tags[row["id"]] if t.startswith("route:")), None)
        endpoint = next((t[9:] for t in tags[row["id"]] if t.startswith("endpoint:")), None)
        result.append(
            {
                **row,
                "latency_ms": latency_ms(row["request_start_time"], row["request_end_time"]),
                "route": route,
                "endpoint": endpoint,
                "tags": ordered_tags(tags[row["id"]]),
                "scores": scores[row["id"]],
                "prompt": None
                if prompt is None
                else {
                    "template_id": prompt.template_id,
                    "name": prompt.name,
                    "version": prompt.version,
                },
            }
        )
    return result


def group_requests(connection: sa.Connection, *, group_id: int) -> list[dict[str, Any]]:
    """The requests of a group, in order (at most _GROUP_LIMIT)."""
    query = sa.select(*_ROW_COLUMNS).where(R.c.group_id == group_id).order_by(R.c.id)
    rows = [r._asdict() for r in connection.execute(query.limit(_GROUP_LIMIT))]
    return summaries(connection, rows=rows)


def request_detail(connection: sa.Connection, *, request_id: int) -> dict[str, Any] | None:
    """One request in full, with tags, scores (and their comments), prompt and group."""
    row = connection.execute(sa.select(R).where(R.c.id == request_id)).first()
    if row is None:
        return None
    detail = row._asdict()
    detail.pop("idempotency_key", None)
    summary = summaries(connection, rows=[{c.name: detail[c.name] for c in _ROW_COLUMNS}])[0]
    metadata = dict(detail["metadata"] or {})
    score_rows = connection.execute(
        sa.select(S.c.name, S.c.score, S.c.updated_at)
        .where(S.c.request_id == request_id)
        .order_by(S.c.name)
    )
    detail["scores"] = [
        {
            "name": name,
            "score": score,
            "updated_at": updated_at,
            "comment": metadata.get(f"feedback_comment:{name}"),
        }
        for name, score, updated_at in score_rows
    ]
    detail.update(
        latency_ms=summary["latency_ms"],
        route=summary["route"],
        tags=summary["tags"],
        prompt=summary["prompt"],
    )
    group = detail["group_id"]
    others = group_requests(connection, group_id=group) if group is not None else []
    detail["group"] = [r for r in others if r["id"] != request_id]
    return detail
