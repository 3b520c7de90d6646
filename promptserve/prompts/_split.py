"""A split release label: its arms, weights and segments, checked once when read or declared.

The shape is the embedded backend's (docs/RELEASES.md, "The data"): arms of 2 or more
distinct versions with whole weights 0-100 summing to 100, a control among them, and
optionally a metadata key whose values get arms of their own (1 or more, same weight rules).
A split is read from the backend (`Split.from_json`) or declared on a chain for the hosted
registry (`declared_split`), whose split the API cannot read; both give the same object, so
serving never asks where a split came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Arm", "Split", "SplitError", "declared_split"]


class SplitError(ValueError):
    """A split that cannot be served as given; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class Arm:
    """One version of a split and its share of the traffic, in percent."""

    version: int
    weight: int


@dataclass(frozen=True)
class Split:
    """A release label split across versions (one `release_id` per set of weights)."""

    template: str
    label: str
    control: int
    arms: tuple[Arm, ...]
    release_id: str
    segment_key: str | None = None
    segments: Mapping[str, tuple[Arm, ...]] | None = None

    @property
    def versions(self) -> frozenset[int]:
        """Every version a request of this split may be served (segments included)."""
        found = {arm.version for arm in self.arms}
        for arms in (self.segments or {}).values():
            found.update(arm.version for arm in arms)
        return frozenset(found)

    @classmethod
    def from_json(cls, data: Any, *, template: str, label: str) -> Split:
        """The split object of `GET /rest/releases/{template}/{label}` (its `split`)."""
        if not isinstance(data, Mapping):
            raise SplitError("a split must be a JSON object")
        release_id = data.get("release_id")
        if not isinstance(release_id, str) or not release_id:
            raise SplitError("the split has no release_id")
        where = f"{template}@{label}"
        arms = _checked_arms(_json_arms(data.get("arms"), "arms"), f"{where} arms", least=2)
        control = data.get("control")
        if not _is_version(control) or control not in {a.version for a in arms}:
            raise SplitError(f"{where}: control {control!r} is not one of the arms' versions")
        segment_key, segments = None, None
        raw_segments = data.get("segments")
        if raw_segments is not None:
            if not isinstance(raw_segments, Mapping):
                raise SplitError(f"{where}: segments must be an object or null")
            segment_key, segments = _checked_segments(
                raw_segments.get("key"),
                {value: _json_arms(arms_of, f"segments.values[{value!r}]")
                 for value, arms_of in _mapping(raw_segments.get("values"), where).items()},
                where,
            )
        return cls(template, label, int(control), arms, release_id, segment_key, segments)


def declared_split(
    template: str,
    label: str,
    weights: Mapping[int, int],
    *,
    control: int | None,
    segments: Mapping[str, Any] | None = None,
) -> Split:
    """The split a chain declares: `{version: weight}`, its control, and optionally
    `{"key": "plan", "values": {"pro": {4: 100}}}`. Its release id is a digest of the
    declaration, so every worker and replica serving the same code agrees on it, and a
    changed declaration is a new release."""
    where = f"prompt {template!r} label {label!r}"
    if not isinstance(weights, Mapping):
        raise SplitError(f"{where}: split must map version numbers to weights, "
                         "such as {3: 50, 4: 50}")
    arms = _checked_arms((Arm(v, w) for v, w in weights.items()), f"{where} split", least=2)
    if control is None:
        raise SplitError(f"{where}: a split needs its control (control=<one of its versions>)")
    if not _is_version(control) or control not in weights:
        raise SplitError(f"{where}: control {control!r} is not one of the split's versions "
                         f"{sorted(weights)}")
    segment_key, checked = None, None
    if segments is not None:
        if not isinstance(segments, Mapping) or set(segments) != {"key", "values"}:
            raise SplitError(f"{where}: segments must be "
                             "{'key': <metadata key>, 'values': {<value>: {version: weight}}}")
        values = _mapping(segments["values"], where)
        segment_key, checked = _checked_segments(
            segments["key"],
            {value: _weights(w, f"{where} segment {value!r}") for value, w in values.items()},
            where,
        )
    digest = hashlib.sha256(json.dumps(
        [template, label, control, [[a.version, a.weight] for a in arms], segment_key,
         {k: [[a.version, a.weight] for a in v] for k, v in sorted((checked or {}).items())}],
    ).encode()).hexdigest()
    return Split(template, label, control, arms, f"declared-{digest[:16]}", segment_key,
                 checked)


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _weights(weights: Any, where: str) -> list[Arm]:
    if not isinstance(weights, Mapping):
        raise SplitError(f"{where}: weights must map version numbers to weights")
    return [Arm(v, w) for v, w in weights.items()]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise SplitError(f"{where}: segments.values must be a non-empty object")
    return value


def _json_arms(raw: Any, where: str) -> list[Arm]:
    if not isinstance(raw, list):
        raise SplitError(f"{where} must be a list of {{version, weight}}")
    arms = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise SplitError(f"{where}: each arm must be an object {{version, weight}}")
        arms.append(Arm(item.get("version"), item.get("weight")))  # type: ignore[arg-type]
    return arms


def _checked_arms(arms: Iterable[Arm], where: str, *, least: int) -> tuple[Arm, ...]:
    """`arms` in their given order, refused unless versions are distinct whole numbers and
    weights whole numbers 0-100 that sum to 100."""
    checked = tuple(arms)
    for arm in checked:
        if not _is_version(arm.version):
            raise SplitError(f"{where}: version {arm.version!r} is not a whole number >= 1")
        if isinstance(arm.weight, bool) or not isinstance(arm.weight, int) \
                or not 0 <= arm.weight <= 100:
            raise SplitError(f"{where}: weight {arm.weight!r} of version {arm.version} is not "
                             "a whole number from 0 to 100")
    versions = [arm.version for arm in checked]
    if len(set(versions)) != len(versions):
        raise SplitError(f"{where}: a version appears twice ({versions})")
    if len(checked) < least:
        raise SplitError(f"{where}: a split needs at least {least} versions, got {versions}")
    total = sum(arm.weight for arm in checked)
    if total != 100:
        raise SplitError(f"{where}: weights sum to {total}, not 100")
    return checked


def _checked_segments(
    key: Any, values: Mapping[Any, list[Arm]], where: str
) -> tuple[str, dict[str, tuple[Arm, ...]]]:
    if not isinstance(key, str) or not key:
        raise SplitError(f"{where}: segments.key must be a metadata key (text)")
    checked: dict[str, tuple[Arm, ...]] = {}
    for value, arms in values.items():
        if not isinstance(value, str):
            raise SplitError(f"{where}: segment value {value!r} must be text")
        checked[value] = _checked_arms(arms, f"{where} segment {key}={value!r}", least=1)
    return key, checked
