"""Splits as declared on a chain or read from the backend: checked once, with clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from promptserve.prompts import RegistryPrompt, Split, SplitError, declared_split


def test_a_declared_split_keeps_its_arms_control_and_segments() -> None:
    prompt = RegistryPrompt("slogan", label="prod", split={3: 50, 4: 50}, control=3,
                            segments={"key": "plan", "values": {"pro": {4: 100}}})
    split = prompt.split
    assert split is not None
    assert [(a.version, a.weight) for a in split.arms] == [(3, 50), (4, 50)]
    assert split.control == 3 and split.label == "prod" and split.template == "slogan"
    assert split.segment_key == "plan"
    assert split.segments is not None and [a.version for a in split.segments["pro"]] == [4]
    assert split.versions == {3, 4}
    assert "split={3: 50, 4: 50}, control=3" in repr(prompt)


def test_the_declared_release_id_is_a_digest_of_the_declaration() -> None:
    first = declared_split("slogan", "prod", {3: 50, 4: 50}, control=3)
    again = declared_split("slogan", "prod", {3: 50, 4: 50}, control=3)
    moved = declared_split("slogan", "prod", {3: 40, 4: 60}, control=3)
    assert first.release_id == again.release_id
    assert first.release_id.startswith("declared-")
    assert moved.release_id != first.release_id


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"split": {3: 50, 4: 40}, "control": 3}, "weights sum to 90, not 100"),
        ({"split": {3: 100}, "control": 3}, "at least 2 versions"),
        ({"split": {3: 150, 4: -50}, "control": 3}, "not a whole number from 0 to 100"),
        ({"split": {3: 50.0, 4: 50}, "control": 3}, "weight 50.0"),
        ({"split": {3: True, 4: 99}, "control": 3}, "weight True"),
        ({"split": {0: 50, 4: 50}, "control": 4}, "version 0 is not a whole number"),
        ({"split": {"3": 50, 4: 50}, "control": 4}, "version '3'"),
        ({"split": {3: 50, 4: 50}}, "needs its control"),
        ({"split": {3: 50, 4: 50}, "control": 5}, "control 5 is not one of"),
        ({"control": 3}, "control and segments need a split"),
        ({"split": [3, 4], "control": 3}, "must map version numbers to weights"),
        ({"split": {3: 50, 4: 50}, "control": 3, "segments": {"plan": {"pro": {4: 100}}}},
         "segments must be"),
        ({"split": {3: 50, 4: 50}, "control": 3,
          "segments": {"key": "plan", "values": {"pro": {4: 90}}}}, "plan='pro'.*sum to 90"),
        ({"split": {3: 50, 4: 50}, "control": 3, "segments": {"key": "", "values": {"a": {}}}},
         "segments.key must be"),
        ({"split": {3: 50, 4: 50}, "control": 3, "segments": {"key": "plan", "values": {}}},
         "non-empty object"),
    ],
)
def test_a_declaration_that_cannot_be_served_is_refused(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(SplitError, match=message):
        RegistryPrompt("slogan", label="prod", **arguments)


def test_only_a_label_can_be_split() -> None:
    with pytest.raises(ValueError, match="only a release label can be split"):
        RegistryPrompt("slogan", version=3, split={3: 50, 4: 50}, control=3)


BACKEND_SPLIT = {
    "template": "slogan", "label": "prod", "control": 3,
    "arms": [{"version": 3, "weight": 50}, {"version": 4, "weight": 50}],
    "segments": {"key": "plan", "values": {"pro": [{"version": 5, "weight": 100}]}},
    "guardrail": False, "alpha": 0.05, "started_at": "2025-01-01T00:00:00Z",
    "release_id": "r-1",
}


def test_the_backends_split_object_is_read() -> None:
    split = Split.from_json(BACKEND_SPLIT, template="slogan", label="prod")
    assert split.release_id == "r-1" and split.control == 3
    assert split.versions == {3, 4, 5}
    assert Split.from_json({**BACKEND_SPLIT, "segments": None}, template="slogan",
                           label="prod").segments is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"release_id": None}, "no release_id"),
        ({"arms": "3,4"}, "must be a list"),
        ({"arms": [{"version": 3, "weight": 60}, {"version": 4, "weight": 50}]}, "sum to 110"),
        ({"control": 9}, "control 9"),
        ({"segments": []}, "segments must be an object"),
    ],
)
def test_a_malformed_backend_split_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        Split.from_json({**BACKEND_SPLIT, **change}, template="slogan", label="prod")
