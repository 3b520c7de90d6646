"""Repository of the prompt registry: templates, versions and release labels.

Keyword-only functions taking a connection; writers run in the writer thread's transaction
(app/backend/store/_writer.py: group commit, each call run again alone if any fails).
Label moves go through `store.releases.move_label`, so each one lands in the release history;
a label read may resolve a split label by its weights (`get_version`'s `split_draw`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.backend.errors import NotFound
from app.backend.store.releases import move_label, split_version_id
from app.backend.store.schema import prompt_templates as T
from app.backend.store.schema import prompt_versions as V
from app.backend.store.schema import release_labels as L

__all__ = [
    "TemplateVersion",
    "find_template_id",
    "get_version",
    "list_versions",
    "publish_version",
    "resolve_version_id",
]


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    """One version of a template, with the template's fields and the labels on the version."""

    template_id: int
    name: str
    tags: list[str]
    version_id: int
    version: int
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    commit_message: str | None
    created_at: datetime
    release_labels: list[str]


_COLUMNS = (
    T.c.id.label("template_id"),
    T.c.name,
    T.c.tags,
    V.c.id.label("version_id"),
    V.c.version,
    V.c.prompt_template,
    V.c.metadata,
    V.c.commit_message,
    V.c.created_at,
)


def _labels_by_version(connection: sa.Connection, version_ids: list[int]) -> dict[int, list[str]]:
    if not version_ids:
        return {}
    rows = connection.execute(
        sa.select(L.c.version_id, L.c.label)
        .where(L.c.version_id.in_(version_ids))
        .order_by(L.c.label)
    )
    labels: dict[int, list[str]] = {}
    for version_id, label in rows:
        labels.setdefault(version_id, []).append(label)
    return labels


def _to_versions(connection: sa.Connection, rows: Sequence[Any]) -> list[TemplateVersion]:
    labels = _labels_by_version(connection, [r.version_id for r in rows])
    return [
        TemplateVersion(**r._asdict(), release_labels=labels.get(r.version_id, [])) for r in rows
    ]


def find_template_id(connection: sa.Connection, *, identifier: str) -> int | None:
    """Template id by name, or by numeric id when no template has that name."""
    found = connection.scalar(sa.select(T.c.id).where(T.c.name == identifier))
    # Up to 18 digits always fits a BIGINT id.
    if found is None and identifier.isascii() and identifier.isdigit() and len(identifier) <= 18:
        found = connection.scalar(sa.select(T.c.id).where(T.c.id == int(identifier)))
    return found


def resolve_version_id(
    connection: sa.Connection, *, template_id: int, version: int | None, label: str | None
) -> int | None:
    """Version id by label (wins when both given), else by number, else the latest."""
    if label is not None:
        query = sa.select(L.c.version_id).where(L.c.template_id == template_id, L.c.label == label)
    elif version is not None:
        query = sa.select(V.c.id).where(V.c.template_id == template_id, V.c.version == version)
    else:
        query = (
            sa.select(V.c.id)
            .where(V.c.template_id == template_id)
            .order_by(V.c.version.desc())
            .limit(1)
        )
    return connection.scalar(query)


def get_version(
    connection: sa.Connection,
    *,
    identifier: str,
    version: int | None,
    label: str | None,
    split_draw: int | None = None,
    metadata_filters: Mapping[str, Any] | None = None,
) -> TemplateVersion:
    """The requested version of a template; NotFound names what is unknown.

    With `split_draw` (0-99), a split label resolves by its weights (the arms of the
    segment that `metadata_filters` names), as the hosted service resolves an A/B label;
    without it, a label reads the row it points at (the control while split).
    """
    template_id = find_template_id(connection, identifier=identifier)
    if template_id is None:
        raise NotFound(f"prompt template {identifier!r} not found")
    version_id: int | None = None
    if label is not None and split_draw is not None:
        version_id = split_version_id(
            connection,
            template_id=template_id,
            label=label,
            metadata=metadata_filters,
            draw=split_draw,
        )
    if version_id is None:
        version_id = resolve_version_id(
            connection, template_id=template_id, version=version, label=label
        )
    if version_id is None:
        what = f"label {label!r}" if label is not None else f"version {version}"
        raise NotFound(f"prompt template {identifier!r} has no {what}")
    row = connection.execute(
        sa.select(*_COLUMNS).join(T, T.c.id == V.c.template_id).where(V.c.id == version_id)
    ).one()
    return _to_versions(connection, [row])[0]


def list_versions(
    connection: sa.Connection, *, page: int, per_page: int, label: str | None, name: str | None
) -> tuple[list[TemplateVersion], int]:
    """A page of templates, newest first (latest or labeled version each), and the total."""
    query = sa.select(*_COLUMNS).select_from(T)
    if label is not None:
        query = query.join(L, sa.and_(L.c.template_id == T.c.id, L.c.label == label)).join(
            V, V.c.id == L.c.version_id
        )
    else:
        latest = (
            sa.select(sa.func.max(V.c.version))
            .where(V.c.template_id == T.c.id)
            .correlate(T)
            .scalar_subquery()
        )
        query = query.join(V, sa.and_(V.c.template_id == T.c.id, V.c.version == latest))
    if name:
        query = query.where(sa.func.lower(T.c.name).contains(name.lower(), autoescape=True))
    total = connection.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = connection.execute(
        query.order_by(T.c.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return _to_versions(connection, rows), total


def _template_id_for_publish(
    connection: sa.Connection, *, name: str, tags: list[str] | None, now: datetime
) -> int:
    query = sa.select(T.c.id).where(T.c.name == name).with_for_update()
    template_id = connection.scalar(query)
    if template_id is None:
        try:
            with connection.begin_nested():
                insert = sa.insert(T).values(name=name, tags=tags or [], created_at=now)
                template_id = connection.scalar(insert.returning(T.c.id))
        except sa.exc.IntegrityError:
            # Another replica created it between our SELECT and INSERT.
            template_id = connection.scalar(query)
    elif tags:
        connection.execute(sa.update(T).where(T.c.id == template_id).values(tags=tags))
    assert template_id is not None
    return int(template_id)


def publish_version(
    connection: sa.Connection,
    *,
    name: str,
    tags: list[str] | None,
    prompt_template: dict[str, Any],
    metadata: dict[str, Any],
    commit_message: str | None,
    release_labels: list[str],
    now: datetime,
    by: str = "unknown",
) -> TemplateVersion:
    """Append version N+1 (creating the template if new) and move `release_labels` onto it.

    Each move is a history row `move` by `by` (see `store.releases.move_label`); a split
    label moved by a publish stops being split.
    """
    template_id = _template_id_for_publish(connection, name=name, tags=tags, now=now)
    # The template row is locked FOR UPDATE on PostgreSQL, so N+1 cannot race.
    latest = connection.scalar(
        sa.select(sa.func.max(V.c.version)).where(V.c.template_id == template_id)
    )
    version_id = connection.scalar(
        sa.insert(V)
        .values(
            template_id=template_id,
            version=(latest or 0) + 1,
            prompt_template=prompt_template,
            metadata=metadata,
            commit_message=commit_message,
            created_at=now,
        )
        .returning(V.c.id)
    )
    assert version_id is not None
    for label in dict.fromkeys(release_labels):
        move_label(
            connection,
            template_id=template_id,
            label=label,
            version_id=int(version_id),
            by=by,
            now=now,
        )
    row = connection.execute(
        sa.select(*_COLUMNS).join(T, T.c.id == V.c.template_id).where(V.c.id == version_id)
    ).one()
    return _to_versions(connection, [row])[0]
