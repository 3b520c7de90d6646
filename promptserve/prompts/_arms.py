"""Which arm of a split serves a request: sticky by the caller's key, the same everywhere.

`bucket(release_id, key)` is the first 8 bytes of `sha256(release_id + ":" + key)` (UTF-8),
big-endian, modulo 10,000; the arm is the first whose cumulative weight x 100 exceeds the
bucket. It depends on nothing but the release and the key, so every worker and replica
sends a key to the same version while the split holds, and a new release (new weights, new
`release_id`) deals the keys afresh. A request without a key draws a bucket at random.

A `LiveRelease` is a split with every version built: choosing is a hash and a bisect, and
each arm's log tags and metadata are made once, not per call.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promptserve.prompts._split import Arm, Split
from promptserve.prompts._version import PromptVersion

__all__ = [
    "BUCKETS",
    "MAX_KEY_LENGTH",
    "RELEASE_KEY",
    "RELEASE_METADATA",
    "LiveRelease",
    "ServedArm",
    "bucket",
]

BUCKETS = 10_000

RELEASE_KEY = "release_key"
"""The `configurable` field naming the caller (the service copies `X-PromptServe-Key` here)."""

RELEASE_METADATA = "release_metadata"
"""The `configurable` field of segment values (headers `X-PromptServe-Metadata-<key>`)."""

MAX_KEY_LENGTH = 512
"""Longest caller key or segment value accepted (longer ones are answered 422)."""

# Not a secret, only a spread: the plain generator, no system call per request.
_random = random.Random()


def bucket(release_id: str, key: str) -> int:
    """The bucket 0-9999 of `key` in release `release_id`."""
    digest = hashlib.sha256(f"{release_id}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True, slots=True)
class ServedArm:
    """The arm a call was served by, as its log and the response name it."""

    label: str
    version: int
    release_id: str
    tags: tuple[str, ...]
    metadata: Mapping[str, str]

    def summary(self) -> dict[str, Any]:
        """The response's `promptlayer_release_arms` entry."""
        return {"label": self.label, "version": self.version, "release_id": self.release_id}


class _Chooser:
    """Buckets to versions for one list of arms (a split's, or one segment's)."""

    __slots__ = ("_bounds", "_versions")

    def __init__(self, arms: tuple[Arm, ...]) -> None:
        total = 0
        bounds = []
        for arm in arms:
            total += arm.weight * (BUCKETS // 100)
            bounds.append(total)
        self._bounds = tuple(bounds)
        self._versions = tuple(arm.version for arm in arms)

    def version_at(self, bucket: int) -> int:
        # bisect_right: an arm of weight 0 has an empty range and is never chosen.
        return self._versions[bisect.bisect_right(self._bounds, bucket)]


@dataclass(frozen=True)
class LiveRelease:
    """A split whose versions are all built, ready to route requests."""

    split: Split
    versions: Mapping[int, PromptVersion]
    _main: _Chooser = field(init=False, repr=False, compare=False)
    _segments: Mapping[str, _Chooser] = field(init=False, repr=False, compare=False)
    _arms: Mapping[int, ServedArm] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        split = self.split
        missing = split.versions - set(self.versions)
        if missing:
            raise ValueError(f"versions {sorted(missing)} of the split are not built")
        metadata = {"promptserve_release": split.release_id}
        arms = {
            v: ServedArm(split.label, v, split.release_id,
                         (f"release:{split.label}", f"arm:v{v}"),
                         {**metadata, "promptserve_arm": f"v{v}"})
            for v in split.versions
        }
        object.__setattr__(self, "_main", _Chooser(split.arms))
        object.__setattr__(self, "_segments", {
            value: _Chooser(arms_of) for value, arms_of in (split.segments or {}).items()})
        object.__setattr__(self, "_arms", arms)

    def choose(self, key: str | None,
               metadata: Mapping[str, Any] | None) -> tuple[PromptVersion, ServedArm]:
        """The version (and arm) for a caller `key` (None: at random) with `metadata`."""
        chooser = self._main
        segment_key = self.split.segment_key
        if segment_key is not None and metadata:
            value = metadata.get(segment_key)
            if value is None:  # header names arrive lower-cased
                value = metadata.get(segment_key.lower())
            if isinstance(value, str):
                chooser = self._segments.get(value, chooser)
        at = bucket(self.split.release_id, key) if key else _random.randrange(BUCKETS)
        version = chooser.version_at(at)
        return self.versions[version], self._arms[version]
