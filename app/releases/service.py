"""Releases over the embedded backend's store: what the API, the dashboard and the CLI use.

Every function is async over a `Store` and answers in the contract's JSON shapes
(docs/RELEASES.md), so the JSON API returns them as they are and the dashboard renders the
same dicts. Failures are `ApiError`s (400 a bad spec, naming the field; 404 an unknown
template, label or split; 409 a change that does not fit the label's state), which the
backend answers as `{"message"}`. `by` is the history's "who" (see `who`).

The statistics (numpy, scipy) run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import math
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.backend.errors import ApiError, BadRequest, NotFound
from app.backend.store import Store
from app.backend.store import releases as rs
from app.backend.store.registry import find_template_id
from app.backend.store.releases import Arm, Conflict, Observation, Segments, Split, SplitSpec
from app.backend.store.schema import prompt_templates as T
from app.backend.store.schema import prompt_versions as V
from app.releases.judging import (
    DEFAULT_ALPHA,
    DEFAULT_MIXTURE_SD,
    MIN_SCORES,
    ArmData,
    Comparison,
    Judgement,
    guardrail_breach,
    judge_release,
    summarize,
)

__all__ = [
    "GUARDRAIL_BY",
    "MAX_ARMS",
    "MAX_SEGMENT_VALUES",
    "Conflict",
    "create_label",
    "delete_label",
    "end_split",
    "get_release",
    "judgement",
    "list_labels",
    "list_releases",
    "move_label",
    "parse_spec",
    "promote",
    "rollback",
    "run_guardrails",
    "set_split",
    "who",
]

logger = logging.getLogger(__name__)

MAX_ARMS = 20
MAX_SEGMENT_VALUES = 100
_MAX_VERSION = 2**31 - 1
# Who the guardrail's rollbacks are by, in the history.
GUARDRAIL_BY = "guardrail"
# Series points are hourly up to this age of the release, daily past it.
_HOURLY_FOR = timedelta(hours=72)
_CLIENTS = ("cli", "dashboard")
_SPEC_FIELDS = {"arms", "control", "segments", "guardrail", "alpha", "api_key"}


def _now() -> datetime:
    """Now, as the naive UTC the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def who(api_key: str | None, client: str | None = None) -> str:
    """The history's `by`: `api key …abcd`, `dashboard (…abcd)` or `cli (…abcd)`.

    `client` is the `X-PromptServe-Client` header (`cli` or `dashboard`; anything else counts
    as a plain API key); the key shows only as the last 4 hex digits of its sha256.
    """
    tail = hashlib.sha256((api_key or "").encode()).hexdigest()[-4:]
    if client in _CLIENTS:
        return f"{client} (…{tail})"
    return f"api key …{tail}"


# ---------------------------------------------------------------- the spec of a split


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _version(value: Any, where: str) -> int:
    if not _is_int(value):
        raise BadRequest(f"{where}: must be an integer version number")
    if not 1 <= value <= _MAX_VERSION:
        raise BadRequest(f"{where}: must be a version number from 1 to {_MAX_VERSION}")
    return int(value)


def _arm_list(value: Any, where: str, *, minimum: int) -> tuple[Arm, ...]:
    if not isinstance(value, list):
        raise BadRequest(f"{where}: must be a list of {{version, weight}} objects")
    if not minimum <= len(value) <= MAX_ARMS:
        raise BadRequest(f"{where}: must hold {minimum} to {MAX_ARMS} arms, not {len(value)}")
    arms: list[Arm] = []
    for index, item in enumerate(value):
        place = f"{where}.{index}"
        if not isinstance(item, dict):
            raise BadRequest(f"{place}: must be an object {{version, weight}}")
        unknown = sorted(set(item) - {"version", "weight"})
        if unknown:
            raise BadRequest(f"{place}.{unknown[0]}: unknown field (an arm has version, weight)")
        if "version" not in item or "weight" not in item:
            raise BadRequest(f"{place}: needs both version and weight")
        version = _version(item["version"], f"{place}.version")
        weight = item["weight"]
        if not _is_int(weight):
            raise BadRequest(f"{place}.weight: must be an integer percentage")
        if not 0 <= weight <= 100:
            raise BadRequest(f"{place}.weight: must lie from 0 to 100")
        arms.append(Arm(version, int(weight)))
    versions = [arm.version for arm in arms]
    if len(set(versions)) != len(versions):
        twice = sorted({v for v in versions if versions.count(v) > 1})
        raise BadRequest(f"{where}: version {twice[0]} appears more than once")
    total = sum(arm.weight for arm in arms)
    if total != 100:
        raise BadRequest(f"{where}: weights must sum to 100, not {total}")
    return tuple(arms)


def _segments(value: Any, arms: Sequence[Arm]) -> Segments | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("segments: must be an object {key, values} or null")
    unknown = sorted(set(value) - {"key", "values"})
    if unknown:
        raise BadRequest(f"segments.{unknown[0]}: unknown field (segments has key, values)")
    key, values = value.get("key"), value.get("values")
    if not isinstance(key, str) or not 1 <= len(key) <= 256:
        raise BadRequest("segments.key: must be a metadata key of 1 to 256 characters")
    if not isinstance(values, dict) or not values:
        raise BadRequest("segments.values: must be an object of value → arms, not empty")
    if len(values) > MAX_SEGMENT_VALUES:
        raise BadRequest(f"segments.values: at most {MAX_SEGMENT_VALUES} values")
    known = {arm.version for arm in arms}
    parsed: dict[str, tuple[Arm, ...]] = {}
    for name, arm_list in values.items():
        if not 1 <= len(name) <= 512:
            raise BadRequest("segments.values: each value must have 1 to 512 characters")
        where = f"segments.values.{name}"
        own = _arm_list(arm_list, where, minimum=1)
        strangers = sorted({a.version for a in own} - known)
        if strangers:
            raise BadRequest(f"{where}: version {strangers[0]} is not one of the split's arms")
        parsed[name] = own
    return Segments(key, parsed)


def parse_spec(body: Mapping[str, Any]) -> SplitSpec:
    """The split asked for by a PUT body; BadRequest naming the first offending field."""
    unknown = sorted(set(body) - _SPEC_FIELDS)
    if unknown:
        raise BadRequest(
            f"{unknown[0]}: unknown field (a split has arms, control, segments, guardrail, alpha)"
        )
    if "arms" not in body:
        raise BadRequest("arms: required (a list of {version, weight}, weights summing to 100)")
    arms = _arm_list(body["arms"], "arms", minimum=2)
    control = body.get("control")
    if control is not None:
        control = _version(control, "control")
        if control not in {arm.version for arm in arms}:
            raise BadRequest(f"control: version {control} is not one of the arms")
    guardrail = body.get("guardrail")
    if guardrail is None:
        guardrail = False
    if not isinstance(guardrail, bool):
        raise BadRequest("guardrail: must be true or false")
    alpha = body.get("alpha")
    if alpha is None:
        alpha = DEFAULT_ALPHA
    if not isinstance(alpha, int | float) or isinstance(alpha, bool):
        raise BadRequest("alpha: must be a number")
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise BadRequest("alpha: must lie strictly between 0 and 1")
    return SplitSpec(
        arms=arms,
        control=control,
        segments=_segments(body.get("segments"), arms),
        guardrail=guardrail,
        alpha=float(alpha),
    )


# ---------------------------------------------------------------- reading and changing


def _template_id(connection: sa.Connection, template: str) -> int:
    found = find_template_id(connection, identifier=template)
    if found is None:
        raise NotFound(f"prompt template {template!r} not found")
    return int(found)


def _require_split(
    connection: sa.Connection, template: str, label: str, missing: type[ApiError] = NotFound
) -> Split:
    """The label's split; `missing` (404 for reads, 409 for changes) when it is not split."""
    split = rs.get_split(connection, template_id=_template_id(connection, template), label=label)
    if split is None:
        raise missing(f"label {label!r} of prompt template {template!r} is not split")
    return split


async def list_releases(store: Store) -> list[dict[str, Any]]:
    """The splits in force (split objects), by template then label."""
    splits = await store.read(lambda c: rs.list_splits(c))
    return [split.to_dict() for split in splits]


async def get_release(store: Store, template: str, label: str) -> dict[str, Any]:
    """`{"split": split | None, "version": n | None, "history": [row, ...]}` (newest first).

    NotFound when the template is unknown; an unknown label answers version None (its
    history may still hold rows, from before it was deleted).
    """

    def read(connection: sa.Connection) -> dict[str, Any]:
        template_id = _template_id(connection, template)
        split = rs.get_split(connection, template_id=template_id, label=label)
        row = rs.label_row(connection, template_id=template_id, label=label)
        return {
            "split": None if split is None else split.to_dict(),
            "version": None if row is None else row.version,
            "history": rs.history(connection, template_id=template_id, label=label),
        }

    return await store.read(read)


async def set_split(
    store: Store, template: str, label: str, spec: Mapping[str, Any], by: str
) -> dict[str, Any]:
    """Start or change the split of a label from `spec` (`arms`, `control`?, `segments`?,
    `guardrail`?, `alpha`?); the split object. BadRequest names the offending field.

    Without `control`, the control stays (a change) or is the version the label points at
    (a start), which must then be one of the arms."""
    if not 1 <= len(label) <= 512:
        raise BadRequest("label: must have 1 to 512 characters")
    parsed = parse_spec(spec)
    now = _now()

    def write(connection: sa.Connection) -> Split:
        template_id = _template_id(connection, template)
        return rs.put_split(
            connection, template_id=template_id, label=label, spec=parsed, by=by, now=now
        )

    split = await store.write(write)
    return split.to_dict()


async def _finish(
    store: Store,
    template: str,
    label: str,
    *,
    action: str,
    version: int | None,
    by: str,
    reason: str | None = None,
    release_id: str | None = None,
) -> int:
    now = _now()

    def write(connection: sa.Connection) -> int:
        template_id = _template_id(connection, template)
        return rs.end_split(
            connection,
            template_id=template_id,
            label=label,
            action=action,
            version=version,
            by=by,
            now=now,
            reason=reason,
            release_id=release_id,
        )

    return await store.write(write)


async def promote(
    store: Store, template: str, label: str, version: int | None, by: str
) -> dict[str, Any]:
    """Move the label to `version` (default: the best challenger judged better, else
    Conflict) and end the split; `{"version": n}`.

    An explicit version must be one of the split's arms. The default judges the release
    now, and promotes only if the split is still that release when the write lands.
    """
    if version is not None:
        version = _version(version, "version")
        done = await _finish(store, template, label, action="promote", version=version, by=by)
        return {"version": done}
    judged = await _judgement(store, template, label, missing=Conflict)
    better = [c for c in judged["comparisons"] if c["verdict"] == "better"]
    if not better:
        raise Conflict(
            f"no challenger of {label!r} is judged better than the control yet; "
            "name the version to promote it anyway"
        )
    best = max(better, key=lambda c: c["comparison"]["difference"])
    done = await _finish(
        store,
        template,
        label,
        action="promote",
        version=int(best["version"]),
        by=by,
        release_id=judged["split"]["release_id"],
    )
    return {"version": done}


async def rollback(store: Store, template: str, label: str, by: str) -> dict[str, Any]:
    """End the split with the label on the control; `{"version": control}`."""
    done = await _finish(store, template, label, action="rollback", version=None, by=by)
    return {"version": done}


async def end_split(store: Store, template: str, label: str, by: str) -> dict[str, Any]:
    """End the split, the label staying on the control; `{"version": control}`."""
    done = await _finish(store, template, label, action="end", version=None, by=by)
    return {"version": done}


# ---------------------------------------------------------------- judging


def _arm_name(version: int) -> str:
    return f"v{version}"


def _arm_data(split: Split, found: Sequence[Observation]) -> dict[int, ArmData]:
    """Each arm's observations, scores in the order they arrived."""
    by_version: dict[int, list[Observation]] = {arm.version: [] for arm in split.arms}
    for item in found:
        by_version.setdefault(item.version, []).append(item)
    arms: dict[int, ArmData] = {}
    for version, items in by_version.items():
        scored = sorted((i for i in items if i.score is not None), key=lambda i: i.score_order or 0)
        arms[version] = ArmData(
            name=_arm_name(version),
            scores=[float(i.score) for i in scored if i.score is not None],
            errors=[i.error for i in items],
            latencies_ms=[i.latency_ms for i in items],
            tokens=[i.tokens for i in items],
        )
    return arms


def _previous(split: Split) -> dict[str, Comparison]:
    """The stored looks that can carry: taken at this alpha share and these parameters."""
    share = split.alpha / max(1, len(split.challengers))
    found: dict[str, Comparison] = {}
    for name, data in split.looks.items():
        try:
            look = Comparison.from_dict(data)
        except (KeyError, TypeError, ValueError):
            continue
        parameters = (look.alpha, look.mixture_sd, look.min_scores)
        if parameters == (share, DEFAULT_MIXTURE_SD, MIN_SCORES):
            found[name] = look
    return found


def _judge(split: Split, arms: Mapping[int, ArmData]) -> list[Judgement]:
    control = arms[split.control]
    challengers = [arms[v] for v in split.challengers]
    try:
        return judge_release(control, challengers, alpha=split.alpha, previous=_previous(split))
    except ValueError:
        # Scores went missing since a look (a request re-linked, say): start afresh.
        return judge_release(control, challengers, alpha=split.alpha)


def _series_of(
    split: Split, version: int, items: Sequence[Observation], now: datetime
) -> list[dict[str, Any]]:
    """Cumulative mean score with its interval at the end of each hour (day past 72 h)."""
    scored = sorted(
        (i for i in items if i.version == version and i.score is not None and i.scored_at),
        key=lambda i: (i.scored_at, i.score_order or 0),
    )
    if not scored:
        return []
    step = timedelta(hours=1) if now - split.started_at <= _HOURLY_FOR else timedelta(days=1)
    times = [i.scored_at for i in scored if i.scored_at is not None]
    values = [float(i.score) for i in scored if i.score is not None]
    start = min(split.started_at, times[0])
    buckets = max(1, math.ceil((times[-1] - start) / step + 1e-9))
    points: list[dict[str, Any]] = []
    for k in range(1, buckets + 1):
        edge = start + k * step
        prefix = values[: bisect.bisect_left(times, edge)]
        if not prefix:
            continue
        summary = summarize(ArmData(name=_arm_name(version), scores=prefix))
        interval = summary.mean_score_interval
        points.append(
            {
                "at": min(edge, now).isoformat() + "Z",
                "feedback": summary.feedback,
                "mean": summary.mean_score,
                "interval": None if interval is None else interval.to_dict(),
            }
        )
    return points


def _role(split: Split, version: int) -> str:
    return "control" if version == split.control else "challenger"


def _judgement_of(
    split: Split, found: Sequence[Observation], now: datetime
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The contract's judgement and the looks to keep (blocking: numpy and scipy)."""
    arms = _arm_data(split, found)
    judged = _judge(split, arms)
    order = [split.control, *split.challengers]
    answer = {
        "split": split.to_dict(),
        "arms": [
            {**summarize(arms[v]).to_dict(), "version": v, "role": _role(split, v)} for v in order
        ],
        "comparisons": [
            {**j.to_dict(), "version": v} for v, j in zip(split.challengers, judged, strict=True)
        ],
        "series": [
            {"version": v, "role": _role(split, v), "name": _arm_name(v),
             "points": _series_of(split, v, found, now)}
            for v in order
        ],
    }
    looks = {j.challenger.name: j.comparison.to_dict() for j in judged}
    return answer, looks


async def _observe(
    store: Store, template: str, label: str, missing: type[ApiError]
) -> tuple[Split, list[Observation]]:
    def read(connection: sa.Connection) -> tuple[Split, list[Observation]]:
        # The split (and its looks) first: the requests read after include every score the
        # looks counted.
        split = _require_split(connection, template, label, missing)
        return split, rs.observations(connection, split=split)

    return await store.read(read)


async def _keep_looks(store: Store, split: Split, looks: Mapping[str, dict[str, Any]]) -> None:
    if looks == split.looks:
        return
    await store.write(
        lambda c: rs.save_looks(
            c,
            template_id=split.template_id,
            label=split.label,
            release_id=split.release_id,
            looks=looks,
        )
    )


async def judgement(store: Store, template: str, label: str) -> dict[str, Any]:
    """`{"split", "arms", "comparisons", "series"}` of the label's split (NotFound if none).

    Keeps each challenger's look with the split, so the next judgement continues it and a
    verdict, once reached, stays.
    """
    return await _judgement(store, template, label, missing=NotFound)


async def _judgement(
    store: Store, template: str, label: str, *, missing: type[ApiError]
) -> dict[str, Any]:
    split, found = await _observe(store, template, label, missing)
    answer, looks = await asyncio.to_thread(_judgement_of, split, found, _now())
    await _keep_looks(store, split, looks)
    return answer


# ---------------------------------------------------------------- the guardrail


def _breach(split: Split, found: Sequence[Observation]) -> str | None:
    """Why the split should roll back (every breaching challenger), or None."""
    arms = _arm_data(split, found)
    share = split.alpha / max(1, len(split.challengers))
    reasons = [
        reason
        for version in split.challengers
        if (reason := guardrail_breach(arms[split.control], arms[version], share)) is not None
    ]
    return "; ".join(reasons) if reasons else None


async def run_guardrails(store: Store) -> list[dict[str, Any]]:
    """Roll back every guarded split whose challenger breaches; what was rolled back.

    Each entry is `{"template", "label", "version", "reason"}`; the history holds a row
    `guardrail_rollback` with the reason, and the log a warning. A split changed between the
    judgement and the rollback is left alone (it is another release now).
    """
    splits = await store.read(lambda c: rs.list_splits(c, guarded_only=True))
    done: list[dict[str, Any]] = []
    for split in splits:

        def observe(connection: sa.Connection, split: Split = split) -> list[Observation]:
            return rs.observations(connection, split=split)

        found = await store.read(observe)
        reason = await asyncio.to_thread(_breach, split, found)
        if reason is None:
            continue
        try:
            version = await _finish(
                store,
                split.template,
                split.label,
                action="guardrail_rollback",
                version=None,
                by=GUARDRAIL_BY,
                reason=reason,
                release_id=split.release_id,
            )
        except (Conflict, NotFound):
            continue
        logger.warning(
            "release guardrail: %s label %r rolled back to v%d: %s",
            split.template, split.label, version, reason,
        )
        done.append(
            {"template": split.template, "label": split.label, "version": version,
             "reason": reason}
        )
    return done


class GuardrailRunner:
    """Runs `run_guardrails` soon after a score lands (debounced) and every `interval` s.

    `poke` is what a score route calls: it costs a flag check, and a burst of scores
    leads to one run `delay` seconds after the first. Runs never overlap.
    """

    def __init__(self, store: Store, *, delay: float = 1.0, interval: float = 30.0) -> None:
        self._store = store
        self._delay = delay
        self._interval = interval
        self._pending = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def poke(self) -> None:
        """Schedule a run unless one is already waiting."""
        if self._pending:
            return
        self._pending = True
        self._spawn(self._soon())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _soon(self) -> None:
        await asyncio.sleep(self._delay)
        self._pending = False
        await self.run_once()

    async def run_once(self) -> None:
        """One run; failures are logged, never raised (the next score or tick retries)."""
        async with self._lock:
            try:
                await run_guardrails(self._store)
            except Exception:
                logger.exception("release guardrail run failed")

    async def run_forever(self) -> None:
        """A run every `interval` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.run_once()

    async def close(self) -> None:
        """Cancel what is scheduled and wait for it."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


# ---------------------------------------------------------------- the hosted label endpoints


def _label_dict(row: rs.LabelRow) -> dict[str, Any]:
    return {
        "prompt_version_id": row.version_id,
        "prompt_version_number": row.version,
        "release_label": row.label,
        "release_label_id": row.label_id,
    }


async def list_labels(store: Store, template: str) -> dict[str, Any]:
    """`{"release_labels": [...]}` of a template, as the hosted GET .../labels answers."""

    def read(connection: sa.Connection) -> list[rs.LabelRow]:
        return rs.label_rows(connection, template_id=_template_id(connection, template))

    return {"release_labels": [_label_dict(row) for row in await store.read(read)]}


def _version_id(connection: sa.Connection, template_id: int, version: int) -> int:
    found = connection.scalar(
        sa.select(V.c.id).where(V.c.template_id == template_id, V.c.version == version)
    )
    if found is None:
        raise NotFound(f"prompt template id {template_id} has no version {version}")
    return int(found)


def _label_answer(connection: sa.Connection, label_id: int) -> dict[str, Any]:
    row = rs.label_rows(connection, label_id=label_id)[0]
    return {
        "created_at": rs.label_created_at(connection, row=row).isoformat() + "Z",
        "id": row.label_id,
        "name": row.label,
        "prompt_id": row.template_id,
        "prompt_version_id": row.version_id,
    }


async def create_label(
    store: Store, prompt_id: int, name: str, version: int, by: str
) -> dict[str, Any]:
    """Put a new label on a version (Conflict if the template has it already); history
    `move`. The hosted answer: `{created_at, id, name, prompt_id, prompt_version_id}`."""
    now = _now()

    def write(connection: sa.Connection) -> dict[str, Any]:
        if connection.scalar(sa.select(T.c.id).where(T.c.id == prompt_id)) is None:
            raise NotFound(f"prompt {prompt_id} not found")
        rs.lock_template(connection, template_id=prompt_id)
        if rs.label_row(connection, template_id=prompt_id, label=name) is not None:
            raise Conflict(f"prompt {prompt_id} has a label {name!r} already; PATCH moves it")
        version_id = _version_id(connection, prompt_id, version)
        label_id = rs.move_label(
            connection, template_id=prompt_id, label=name, version_id=version_id, by=by, now=now
        )
        return _label_answer(connection, label_id)

    return await store.write(write)


async def move_label(store: Store, label_id: int, version: int, by: str) -> dict[str, Any]:
    """Move a label to another version of its template (ending a split of it); history
    `move`. The same answer as `create_label`."""
    now = _now()

    def write(connection: sa.Connection) -> dict[str, Any]:
        found = rs.label_rows(connection, label_id=label_id)
        if not found:
            raise NotFound(f"prompt label {label_id} not found")
        row = found[0]
        rs.lock_template(connection, template_id=row.template_id)
        version_id = _version_id(connection, row.template_id, version)
        rs.move_label(
            connection,
            template_id=row.template_id,
            label=row.label,
            version_id=version_id,
            by=by,
            now=now,
        )
        return _label_answer(connection, label_id)

    return await store.write(write)


async def delete_label(store: Store, label_id: int, by: str) -> None:
    """Remove a label (and any split of it); history `move` to nothing."""
    now = _now()
    await store.write(lambda c: rs.delete_label(c, label_id=label_id, by=by, now=now))

