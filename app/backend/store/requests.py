"""Repository of the request log: requests, tags, scores, metadata, prompt links and groups.

Keyword-only functions taking a connection; writers run in the writer thread's transaction
(app/backend/store/_writer.py: group commit, each call run again alone if any fails).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.backend.errors import NotFound
from app.backend.store.registry import find_template_id, resolve_version_id
from app.backend.store.schema import groups as G
from app.backend.store.schema import prompt_templates as T
from app.backend.store.schema import prompt_versions as V
from app.backend.store.schema import request_tags as RT
from app.backend.store.schema import requests as R
from app.backend.store.schema import scores as S

__all__ = [
    "create_group",
    "get_request",
    "NewRequest",
    "insert_request",
    "insert_requests",
    "link_group",
    "group_exists",
    "link_prompt",
    "merge_metadata",
    "resolve_prompt_link",
    "upsert_score",
    "version_blueprint",
]


# Built once: constructing statements per call costs more than executing them (ingest path).
# Given a list of rows, each runs as one multi-row INSERT (SQLAlchemy's "insertmanyvalues").
_INSERT_REQUESTS = sa.insert(R).returning(R.c.id, sort_by_parameter_order=True)
_INSERT_TAG = sa.insert(RT)
_IDS_BY_KEYS = sa.select(R.c.idempotency_key, R.c.id).where(
    R.c.idempotency_key.in_(sa.bindparam("keys", expanding=True))
)
# Idempotent inserts: a key stored before (or earlier in the same list) gives no row back.
_INSERT_ONCE = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(R)
    .on_conflict_do_nothing(index_elements=[R.c.idempotency_key])
    .returning(R.c.idempotency_key, R.c.id)
    for dialect in (postgresql, sqlite)
}


@dataclass(frozen=True, slots=True)
class NewRequest:
    """One request to store: column values, tags, an optional (name, score), its key."""

    values: dict[str, Any]
    tags: list[str]
    score: tuple[str, int] | None = None
    idempotency_key: str | None = None


def _require_request(connection: sa.Connection, request_id: int, *, lock: bool = False) -> None:
    query = sa.select(R.c.id).where(R.c.id == request_id)
    if connection.scalar(query.with_for_update() if lock else query) is None:
        raise NotFound(f"request_id {request_id} not found")


def resolve_prompt_link(
    connection: sa.Connection,
    *,
    prompt_id: int | None,
    prompt_name: str | None,
    version: int | None,
) -> int | None:
    """Version id for a logged request's prompt fields, or None when they do not resolve."""
    template_id: int | None = None
    if prompt_id is not None:
        template_id = connection.scalar(sa.select(T.c.id).where(T.c.id == prompt_id))
    elif prompt_name:
        template_id = connection.scalar(sa.select(T.c.id).where(T.c.name == prompt_name))
    if template_id is None:
        return None
    return resolve_version_id(connection, template_id=template_id, version=version, label=None)


def version_blueprint(connection: sa.Connection, *, version_id: int | None) -> Any:
    """The stored blueprint of a version (None for None)."""
    if version_id is None:
        return None
    return connection.scalar(sa.select(V.c.prompt_template).where(V.c.id == version_id))


def insert_request(
    connection: sa.Connection,
    *,
    values: dict[str, Any],
    tags: list[str],
    score: tuple[str, int] | None,
    idempotency_key: str | None,
    now: datetime,
) -> tuple[int, bool]:
    """Store one request with its tags and optional score; (id, created) — an idempotent
    repeat returns the first id and False."""
    request = NewRequest(values=values, tags=tags, score=score, idempotency_key=idempotency_key)
    return insert_requests(connection, requests=[request], now=now)[0]


def insert_requests(
    connection: sa.Connection, *, requests: Sequence[NewRequest], now: datetime
) -> list[tuple[int, bool]]:
    """Store many requests as `insert_request` stores each, in a few statements for all.

    One (id, created) per request, in order. A key already stored, or used earlier in
    `requests`, answers that request's id with created False and stores nothing new (no
    tags, no score). Statements per call, not per request: a batch of 17 logs stored this
    way cost the backend 0.73 of the CPU per log it did one request at a time
    (BENCHMARKS.md, "Ingest").
    """
    rows = [{"group_id": None, **r.values, "idempotency_key": r.idempotency_key,
             "created_at": now} for r in requests]
    answers: list[tuple[int, bool]] = []
    keyed = [row for row in rows if row["idempotency_key"] is not None]
    new_ids: dict[str, int] = {}
    old_ids: dict[str, int] = {}
    if keyed:
        statement = _INSERT_ONCE[connection.dialect.name]
        new_ids = dict(connection.execute(statement, keyed).all())
        if taken := {row["idempotency_key"] for row in keyed} - new_ids.keys():
            old_ids = dict(connection.execute(_IDS_BY_KEYS, {"keys": list(taken)}).all())
    unkeyed = [row for row in rows if row["idempotency_key"] is None]
    plain_ids = iter(connection.execute(_INSERT_REQUESTS, unkeyed).scalars().all()
                     if unkeyed else ())
    tag_rows: list[dict[str, Any]] = []
    for request in requests:
        key = request.idempotency_key
        if key is None:
            request_id, created = int(next(plain_ids)), True
        elif key in new_ids:  # the first use of a new key stores it
            request_id, created = new_ids.pop(key), True
            old_ids[key] = request_id
        else:
            request_id, created = old_ids[key], False
        answers.append((request_id, created))
        if created:
            tag_rows.extend({"tag": tag, "request_id": request_id}
                            for tag in dict.fromkeys(request.tags))
            if request.score is not None:
                name, value = request.score
                upsert_score(connection, request_id=request_id, name=name, score=value, now=now)
    if tag_rows:
        connection.execute(_INSERT_TAG, tag_rows)
    return answers


def _insert_for(connection: sa.Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def upsert_score(
    connection: sa.Connection, *, request_id: int, name: str, score: int, now: datetime
) -> None:
    """Set the score `name` of a request (the last write wins)."""
    _require_request(connection, request_id)
    statement = _insert_for(connection)(S).values(
        request_id=request_id, name=name, score=score, created_at=now, updated_at=now
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[S.c.request_id, S.c.name],
            set_={"score": score, "updated_at": now},
        )
    )


def merge_metadata(
    connection: sa.Connection, *, request_id: int, metadata: dict[str, str]
) -> dict[str, str]:
    """Merge `metadata` into the request's (new keys win); return the result."""
    # Row lock on PostgreSQL: two replicas merging into one request must not lose keys.
    current = connection.scalar(
        sa.select(R.c.metadata).where(R.c.id == request_id).with_for_update()
    )
    if current is None:
        raise NotFound(f"request_id {request_id} not found")
    merged = {**current, **metadata}
    connection.execute(sa.update(R).where(R.c.id == request_id).values(metadata=merged))
    return merged


def link_prompt(
    connection: sa.Connection,
    *,
    request_id: int,
    prompt_name: str,
    version: int | None,
    label: str | None,
    input_variables: dict[str, Any],
) -> int:
    """Link a request to a template version (by label, version or latest); return its id."""
    _require_request(connection, request_id)
    template_id = find_template_id(connection, identifier=prompt_name)
    if template_id is None:
        raise NotFound(f"prompt template {prompt_name!r} not found")
    version_id = resolve_version_id(
        connection, template_id=template_id, version=version, label=label
    )
    if version_id is None:
        what = f"label {label!r}" if label is not None else f"version {version}"
        raise NotFound(f"prompt template {prompt_name!r} has no {what}")
    connection.execute(
        sa.update(R)
        .where(R.c.id == request_id)
        .values(prompt_version_id=version_id, prompt_input_variables=input_variables)
    )
    return version_id


def create_group(connection: sa.Connection, *, now: datetime) -> int:
    """A new, empty group; its id."""
    insert = sa.insert(G).values(created_at=now).returning(G.c.id)
    return int(connection.execute(insert).scalar_one())


def link_group(connection: sa.Connection, *, request_id: int, group_id: int) -> None:
    """Put a request into a group."""
    _require_request(connection, request_id)
    if connection.scalar(sa.select(G.c.id).where(G.c.id == group_id)) is None:
        raise NotFound(f"group_id {group_id} not found")
    connection.execute(sa.update(R).where(R.c.id == request_id).values(group_id=group_id))


def group_exists(connection: sa.Connection, *, group_id: int) -> bool:
    """Whether `group_id` names a group."""
    return connection.scalar(sa.select(G.c.id).where(G.c.id == group_id)) is not None


def get_request(connection: sa.Connection, *, request_id: int) -> dict[str, Any] | None:
    """One request in full: its columns plus `tags` (list) and `scores` (name → score)."""
    row = connection.execute(sa.select(R).where(R.c.id == request_id)).first()
    if row is None:
        return None
    result = row._asdict()
    tags = sa.select(RT.c.tag).where(RT.c.request_id == request_id).order_by(RT.c.tag)
    result["tags"] = list(connection.scalars(tags))
    scores = sa.select(S.c.name, S.c.score).where(S.c.request_id == request_id)
    result["scores"] = {name: score for name, score in connection.execute(scores)}
    return result
