"""Repository of A/B releases: label splits, the history of every label change, and the
observations that judge a split's arms.

Keyword-only functions taking a connection, as the other repositories; writers run on the
writer thread (`Store.write`). A split row exists while its label is split, and the label's
`release_labels` row stays on the control meanwhile, so whatever knows nothing of splits
(the SDK's plain reads, label badges, prompt links by label) sees the control. Every write
here locks the template row first (FOR UPDATE on PostgreSQL; SQLite's writer holds the
database), so two replicas changing one template's labels take turns.

This module knows only the schema (no import of `store.registry`, which imports it): callers
resolve the template first.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.backend.errors import ApiError, BadRequest, NotFound
from app.backend.store.schema import prompt_templates as T
from app.backend.store.schema import prompt_versions as V
from app.backend.store.schema import release_history as H
from app.backend.store.schema import release_labels as L
from app.backend.store.schema import release_splits as SP
from app.backend.store.schema import requests as R
from app.backend.store.schema import scores as S

__all__ = [
    "RELEASE_METADATA_KEY",
    "SCORE_NAME",
    "Arm",
    "Conflict",
    "LabelRow",
    "Observation",
    "Segments",
    "Split",
    "SplitSpec",
    "choose_version",
    "delete_label",
    "end_split",
    "get_split",
    "history",
    "label_created_at",
    "label_row",
    "label_rows",
    "list_splits",
    "lock_template",
    "move_label",
    "observations",
    "put_split",
    "save_looks",
    "split_version_id",
    "state_of",
]

# The request metadata key naming the release that served a request (set by promptserve).
RELEASE_METADATA_KEY = "promptserve_release"
# The score name that judges an arm (0-100): the one /feedback and the SDK's track.score
# store when the caller names none.
SCORE_NAME = "default"


class Conflict(ApiError):
    """The change does not fit the label's state now (409): no split to end, no winner."""

    status = 409


@dataclass(frozen=True, slots=True)
class Arm:
    """A version of a split and its share of the traffic, in percent."""

    version: int
    weight: int

    def to_dict(self) -> dict[str, int]:
        return {"version": self.version, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Segments:
    """Arms of their own for requests whose metadata `key` has one of `values`."""

    key: str
    values: dict[str, tuple[Arm, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "values": {v: [a.to_dict() for a in arms] for v, arms in self.values.items()},
        }


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """A split as asked for (already checked for shape; versions are checked on write)."""

    arms: tuple[Arm, ...]
    control: int | None = None
    segments: Segments | None = None
    guardrail: bool = False
    alpha: float = 0.05

    def versions(self) -> set[int]:
        """Every version the spec names."""
        found = {arm.version for arm in self.arms}
        if self.segments is not None:
            found.update(a.version for arms in self.segments.values.values() for a in arms)
        return found


@dataclass(frozen=True, slots=True)
class Split:
    """A split in force, with the last look at each challenger (`looks`)."""

    template_id: int
    template: str
    label: str
    control: int
    arms: tuple[Arm, ...]
    segments: Segments | None
    guardrail: bool
    alpha: float
    started_at: datetime
    release_id: str
    looks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The contract's split object."""
        return {
            "template": self.template,
            "label": self.label,
            "control": self.control,
            "arms": [arm.to_dict() for arm in self.arms],
            "segments": None if self.segments is None else self.segments.to_dict(),
            "guardrail": self.guardrail,
            "alpha": self.alpha,
            "started_at": self.started_at.isoformat() + "Z",
            "release_id": self.release_id,
        }

    def arms_for(self, segment_value: str | None) -> tuple[Arm, ...]:
        """The arms a request with this segment value is split across."""
        if self.segments is not None and segment_value is not None:
            return self.segments.values.get(segment_value, self.arms)
        return self.arms

    @property
    def challengers(self) -> list[int]:
        """The arms' versions other than the control, in the split's order."""
        return [arm.version for arm in self.arms if arm.version != self.control]


@dataclass(frozen=True, slots=True)
class LabelRow:
    """A release label of a template and the version it points at."""

    label_id: int
    template_id: int
    label: str
    version_id: int
    version: int


@dataclass(frozen=True, slots=True)
class Observation:
    """One logged request of a release: its arm, outcome, cost and the score it got."""

    request_id: int
    version: int
    error: bool
    latency_ms: float
    tokens: int
    score: int | None
    scored_at: datetime | None
    score_order: int | None


def choose_version(arms: Sequence[Arm], draw: int) -> int:
    """The version whose cumulative weight covers `draw` (0-99): weights sum to 100."""
    total = 0
    for arm in arms:
        total += arm.weight
        if draw < total:
            return arm.version
    return arms[-1].version


def _arms(data: Any) -> tuple[Arm, ...]:
    return tuple(Arm(int(a["version"]), int(a["weight"])) for a in data)


def _segments(data: Any) -> Segments | None:
    if not data:
        return None
    return Segments(str(data["key"]), {str(v): _arms(a) for v, a in data["values"].items()})


_SPLIT_COLUMNS = (*SP.c, T.c.name.label("template_name"))


def _split_of(row: Any) -> Split:
    return Split(
        template_id=row.template_id,
        template=row.template_name,
        label=row.label,
        control=row.control,
        arms=_arms(row.arms),
        segments=_segments(row.segments),
        guardrail=bool(row.guardrail),
        alpha=float(row.alpha),
        started_at=row.started_at,
        release_id=row.release_id,
        looks=dict(row.looks or {}),
    )


def lock_template(connection: sa.Connection, *, template_id: int) -> str:
    """Lock the template row for this transaction (PostgreSQL); its name."""
    name = connection.scalar(sa.select(T.c.name).where(T.c.id == template_id).with_for_update())
    if name is None:
        raise NotFound(f"prompt template id {template_id} not found")
    return str(name)


def get_split(connection: sa.Connection, *, template_id: int, label: str) -> Split | None:
    """The label's split, or None when it is not split."""
    row = connection.execute(
        sa.select(*_SPLIT_COLUMNS)
        .join(T, T.c.id == SP.c.template_id)
        .where(SP.c.template_id == template_id, SP.c.label == label)
    ).first()
    return None if row is None else _split_of(row)


def list_splits(connection: sa.Connection, *, guarded_only: bool = False) -> list[Split]:
    """Every split in force, by template name then label."""
    query = sa.select(*_SPLIT_COLUMNS).join(T, T.c.id == SP.c.template_id)
    if guarded_only:
        query = query.where(SP.c.guardrail.is_(True))
    rows = connection.execute(query.order_by(T.c.name, SP.c.label))
    return [_split_of(row) for row in rows]


def split_version_id(
    connection: sa.Connection,
    *,
    template_id: int,
    label: str,
    metadata: Mapping[str, Any] | None,
    draw: int,
) -> int | None:
    """The version id a split label serves for `draw` (0-99), or None when not split.

    `metadata` (a get's `metadata_filters`) picks the segment: its value at the split's
    segment key, when that is text.
    """
    row = connection.execute(
        sa.select(SP.c.arms, SP.c.segments).where(
            SP.c.template_id == template_id, SP.c.label == label
        )
    ).first()
    if row is None:
        return None
    arms = _arms(row.arms)
    segments = _segments(row.segments)
    if segments is not None and metadata:
        value = metadata.get(segments.key)
        if isinstance(value, str):
            arms = segments.values.get(value, arms)
    version = choose_version(arms, draw)
    return connection.scalar(
        sa.select(V.c.id).where(V.c.template_id == template_id, V.c.version == version)
    )


_LABEL_COLUMNS = (
    L.c.id.label("label_id"),
    L.c.template_id,
    L.c.label,
    L.c.version_id,
    V.c.version,
)


def label_row(connection: sa.Connection, *, template_id: int, label: str) -> LabelRow | None:
    """The label of a template, or None."""
    row = connection.execute(
        sa.select(*_LABEL_COLUMNS)
        .join(V, V.c.id == L.c.version_id)
        .where(L.c.template_id == template_id, L.c.label == label)
    ).first()
    return None if row is None else LabelRow(**row._asdict())


def label_rows(
    connection: sa.Connection, *, template_id: int | None = None, label_id: int | None = None
) -> list[LabelRow]:
    """The labels of a template (by name), or the one label with `label_id`."""
    query = sa.select(*_LABEL_COLUMNS).join(V, V.c.id == L.c.version_id)
    if template_id is not None:
        query = query.where(L.c.template_id == template_id)
    if label_id is not None:
        query = query.where(L.c.id == label_id)
    return [LabelRow(**row._asdict()) for row in connection.execute(query.order_by(L.c.label))]


def state_of(connection: sa.Connection, *, template_id: int, label: str) -> dict[str, Any] | None:
    """The label's state as history rows hold it: the split, `{"version": n}`, or None."""
    split = get_split(connection, template_id=template_id, label=label)
    if split is not None:
        return split.to_dict()
    row = label_row(connection, template_id=template_id, label=label)
    return None if row is None else {"version": row.version}


def _record(
    connection: sa.Connection,
    *,
    template_id: int,
    label: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    by: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    connection.execute(
        sa.insert(H).values(
            template_id=template_id,
            label=label,
            at=now,
            action=action,
            before=before,
            after=after,
            by=by,
            reason=reason,
        )
    )


def history(
    connection: sa.Connection, *, template_id: int, label: str, limit: int = 500
) -> list[dict[str, Any]]:
    """The label's history, newest first (at most `limit` rows)."""
    rows = connection.execute(
        sa.select(H, T.c.name.label("template_name"))
        .join(T, T.c.id == H.c.template_id)
        .where(H.c.template_id == template_id, H.c.label == label)
        .order_by(H.c.id.desc())
        .limit(limit)
    )
    return [
        {
            "at": row.at.isoformat() + "Z",
            "template": row.template_name,
            "label": row.label,
            "action": row.action,
            "before": row.before,
            "after": row.after,
            "by": row.by,
            "reason": row.reason,
        }
        for row in rows
    ]


def label_created_at(connection: sa.Connection, *, row: LabelRow) -> datetime:
    """When the label last came to be: its newest history row from no state, else (a label
    older than the history) the creation of the version it points at."""
    rows = connection.execute(
        sa.select(H.c.at, H.c.before)
        .where(H.c.template_id == row.template_id, H.c.label == row.label)
        .order_by(H.c.id.desc())
        .limit(500)
    )
    for at, before in rows:
        if before is None:
            return at  # type: ignore[no-any-return]
    created = connection.scalar(sa.select(V.c.created_at).where(V.c.id == row.version_id))
    assert created is not None
    return created  # type: ignore[no-any-return]


def _put_label(
    connection: sa.Connection, *, template_id: int, label: str, version_id: int
) -> int:
    """Point the label at `version_id` (creating it); the label's id."""
    label_id = connection.scalar(
        sa.update(L)
        .where(L.c.template_id == template_id, L.c.label == label)
        .values(version_id=version_id)
        .returning(L.c.id)
    )
    if label_id is None:
        label_id = connection.scalar(
            sa.insert(L)
            .values(template_id=template_id, label=label, version_id=version_id)
            .returning(L.c.id)
        )
    return int(label_id)


def _version_ids(
    connection: sa.Connection, *, template_id: int, versions: set[int]
) -> dict[int, int]:
    rows = connection.execute(
        sa.select(V.c.version, V.c.id).where(
            V.c.template_id == template_id, V.c.version.in_(sorted(versions))
        )
    )
    return {int(version): int(version_id) for version, version_id in rows}


def put_split(
    connection: sa.Connection,
    *,
    template_id: int,
    label: str,
    spec: SplitSpec,
    by: str,
    now: datetime,
) -> Split:
    """Start or change the label's split; history `split` when anything changed.

    The release id (and the start time) stay while the arms, weights, segments and control
    stay: only then do the requests logged so far belong to the same experiment. The looks
    are kept with them unless alpha changed (a look at another alpha cannot carry).
    """
    template = lock_template(connection, template_id=template_id)
    ids = _version_ids(connection, template_id=template_id, versions=spec.versions())
    missing = sorted(spec.versions() - ids.keys())
    if missing:
        names = ", ".join(str(v) for v in missing)
        raise BadRequest(f"arms: prompt template {template!r} has no version {names}")
    current = get_split(connection, template_id=template_id, label=label)
    labelled = label_row(connection, template_id=template_id, label=label)
    control = spec.control
    if control is None:
        control = current.control if current else labelled.version if labelled else None
        if control is None:
            raise BadRequest(f"control: label {label!r} points at no version; name the control")
        if control not in {arm.version for arm in spec.arms}:
            raise BadRequest(
                f"control: label {label!r} is on version {control}, which is not an arm; "
                "name the control"
            )
    same_release = current is not None and (
        current.arms,
        current.segments,
        current.control,
    ) == (spec.arms, spec.segments, control)
    if current is not None and same_release:
        release_id, started_at = current.release_id, current.started_at
        looks = current.looks if current.alpha == spec.alpha else {}
    else:
        release_id, started_at, looks = secrets.token_hex(8), now, {}
    split = Split(
        template_id=template_id,
        template=template,
        label=label,
        control=control,
        arms=spec.arms,
        segments=spec.segments,
        guardrail=spec.guardrail,
        alpha=spec.alpha,
        started_at=started_at,
        release_id=release_id,
        looks=looks,
    )
    if current is not None and current == split:
        return split
    before = state_of(connection, template_id=template_id, label=label)
    values = {
        "release_id": release_id,
        "control": control,
        "arms": [arm.to_dict() for arm in spec.arms],
        "segments": None if spec.segments is None else spec.segments.to_dict(),
        "guardrail": spec.guardrail,
        "alpha": spec.alpha,
        "started_at": started_at,
        "updated_at": now,
        "looks": looks,
    }
    if current is None:
        connection.execute(sa.insert(SP).values(template_id=template_id, label=label, **values))
    else:
        connection.execute(
            sa.update(SP)
            .where(SP.c.template_id == template_id, SP.c.label == label)
            .values(**values)
        )
    _put_label(connection, template_id=template_id, label=label, version_id=ids[control])
    _record(
        connection,
        template_id=template_id,
        label=label,
        action="split",
        before=before,
        after=split.to_dict(),
        by=by,
        now=now,
    )
    return split


def end_split(
    connection: sa.Connection,
    *,
    template_id: int,
    label: str,
    action: str,
    version: int | None,
    by: str,
    now: datetime,
    reason: str | None = None,
    release_id: str | None = None,
) -> int:
    """End the label's split with the label on `version` (None: the control); the version.

    `release_id`, when given, must still be the split's: the guardrail judged that release,
    and a split changed since then is another experiment (Conflict).
    """
    lock_template(connection, template_id=template_id)
    split = get_split(connection, template_id=template_id, label=label)
    if split is None:
        raise Conflict(f"label {label!r} is not split")
    if release_id is not None and split.release_id != release_id:
        raise Conflict(f"label {label!r} has changed its split since it was judged")
    target = split.control if version is None else version
    if target not in {arm.version for arm in split.arms}:
        raise BadRequest(f"version: {target} is not an arm of the split of {label!r}")
    ids = _version_ids(connection, template_id=template_id, versions={target})
    connection.execute(sa.delete(SP).where(SP.c.template_id == template_id, SP.c.label == label))
    _put_label(connection, template_id=template_id, label=label, version_id=ids[target])
    _record(
        connection,
        template_id=template_id,
        label=label,
        action=action,
        before=split.to_dict(),
        after={"version": target},
        by=by,
        now=now,
        reason=reason,
    )
    return target


def move_label(
    connection: sa.Connection,
    *,
    template_id: int,
    label: str,
    version_id: int,
    by: str,
    now: datetime,
) -> int:
    """Point a plain label at `version_id`, ending any split of it; history `move`.

    A move names one version, so a split of the label ends with it (the move's `before`
    holds the split). No row when nothing changes. The label's id.
    """
    before = state_of(connection, template_id=template_id, label=label)
    connection.execute(sa.delete(SP).where(SP.c.template_id == template_id, SP.c.label == label))
    label_id = _put_label(connection, template_id=template_id, label=label, version_id=version_id)
    version = connection.scalar(sa.select(V.c.version).where(V.c.id == version_id))
    after = {"version": version}
    if before != after:
        _record(
            connection,
            template_id=template_id,
            label=label,
            action="move",
            before=before,
            after=after,
            by=by,
            now=now,
        )
    return label_id


def delete_label(connection: sa.Connection, *, label_id: int, by: str, now: datetime) -> None:
    """Remove a label (and any split of it); history `move` to nothing."""
    found = label_rows(connection, label_id=label_id)
    if not found:
        raise NotFound(f"prompt label {label_id} not found")
    row = found[0]
    lock_template(connection, template_id=row.template_id)
    before = state_of(connection, template_id=row.template_id, label=row.label)
    connection.execute(
        sa.delete(SP).where(SP.c.template_id == row.template_id, SP.c.label == row.label)
    )
    connection.execute(sa.delete(L).where(L.c.id == label_id))
    _record(
        connection,
        template_id=row.template_id,
        label=row.label,
        action="move",
        before=before,
        after=None,
        by=by,
        now=now,
    )


def save_looks(
    connection: sa.Connection,
    *,
    template_id: int,
    label: str,
    release_id: str,
    looks: Mapping[str, Mapping[str, Any]],
) -> None:
    """Keep each challenger's newest look at the release, never an older one.

    Two judgements may run at once; a look counting fewer scores than the one stored came
    from an older snapshot and would undo the running intersection, so it is dropped.
    """
    row = connection.execute(
        sa.select(SP.c.id, SP.c.looks)
        .where(
            SP.c.template_id == template_id,
            SP.c.label == label,
            SP.c.release_id == release_id,
        )
        .with_for_update()
    ).first()
    if row is None:
        return
    stored = dict(row.looks or {})
    changed = False
    for name, look in looks.items():
        old = stored.get(name)
        if (old is None or _counts(look) >= _counts(old)) and old != look:
            stored[name] = dict(look)
            changed = True
    if changed:
        connection.execute(sa.update(SP).where(SP.c.id == row.id).values(looks=stored))


def _counts(look: Mapping[str, Any]) -> tuple[int, int]:
    scores = look.get("scores") or {}
    return int(scores.get("control", 0)), int(scores.get("challenger", 0))


def observations(connection: sa.Connection, *, split: Split) -> list[Observation]:
    """The requests logged for the split's release on one of its arms, oldest first.

    A request belongs to the release when its metadata `promptserve_release` is the release
    id, and to the arm of the prompt version it is linked to. Its score is the one named
    `score`; `score_order` (the score row's id) gives the order scores arrived in.
    """
    ids = _version_ids(
        connection, template_id=split.template_id, versions={a.version for a in split.arms}
    )
    if not ids:
        return []
    score = S.alias("s")
    rows = connection.execute(
        sa.select(
            R.c.id,
            V.c.version,
            R.c.status,
            R.c.request_start_time,
            R.c.request_end_time,
            R.c.input_tokens,
            R.c.output_tokens,
            score.c.score,
            score.c.created_at.label("scored_at"),
            score.c.id.label("score_id"),
        )
        .select_from(
            R.join(V, V.c.id == R.c.prompt_version_id).outerjoin(
                score, sa.and_(score.c.request_id == R.c.id, score.c.name == SCORE_NAME)
            )
        )
        .where(
            R.c.prompt_version_id.in_(sorted(ids.values())),
            R.c.metadata[RELEASE_METADATA_KEY].as_string() == split.release_id,
        )
        .order_by(R.c.id)
    )
    return [
        Observation(
            request_id=row.id,
            version=row.version,
            error=row.status == "ERROR",
            latency_ms=max(
                0.0, (row.request_end_time - row.request_start_time).total_seconds() * 1000
            ),
            tokens=max(0, row.input_tokens) + max(0, row.output_tokens),
            score=row.score,
            scored_at=row.scored_at,
            score_order=row.score_id,
        )
        for row in rows
    ]
