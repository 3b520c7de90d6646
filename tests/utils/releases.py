"""Helpers for release tests: a template with two versions, split, with scored requests.

Everything goes through the backend's own routes (publish, the releases JSON API,
/log-request, /library-track-score), as the service and its users do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.utils.dashboard import chat, log_request, publish

# The score the judging reads (docs/RELEASES.md, "Judging").
SCORE_NAME = "default"
# Control about 45, challenger about 85, little spread: "better" after 15 scores each.
LOW_SCORES = [40, 45, 50, 42, 48] * 3
HIGH_SCORES = [80, 85, 90, 82, 88] * 3


def release_path(name: str, label: str, *rest: str) -> str:
    """The releases API's path of a label."""
    return "/".join(["/rest/releases", quote(name, safe=""), quote(label, safe=""), *rest])


def publish_two_versions(client: httpx.Client, name: str, label: str = "prod") -> None:
    """v1 (carrying `label`) and v2 of template `name`."""
    publish(client, name, chat("user", "Write a slogan for {product}."), labels=[label])
    publish(client, name, chat("user", "Write a short, bold slogan for {product}."))


def start_split(client: httpx.Client, name: str, label: str = "prod") -> dict[str, Any]:
    """Split `label` 50/50 between v1 (the control) and v2; the split."""
    body = {"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "control": 1}
    answer = client.put(release_path(name, label), json=body)
    assert answer.status_code == 200, answer.text
    split: dict[str, Any] = answer.json()
    return split


def log_scored(
    client: httpx.Client,
    name: str,
    split: dict[str, Any],
    version: int,
    scores: list[int],
    *,
    label: str = "prod",
) -> list[int]:
    """One logged request per score, served by `version` of the split; their ids."""
    ids = []
    for index, score in enumerate(scores):
        request_id = log_request(
            client,
            latency=0.1 + 0.01 * index,
            prompt_name=name,
            prompt_version_number=version,
            tags=[f"release:{label}", f"arm:v{version}"],
            metadata={"promptserve_release": split["release_id"], "promptserve_arm": f"v{version}"},
        )
        body = {"request_id": request_id, "score": score, "name": SCORE_NAME}
        answer = client.post("/library-track-score", json=body)
        assert answer.status_code == 200, answer.text
        ids.append(request_id)
    return ids


def seed_release(client: httpx.Client, name: str, label: str = "prod") -> dict[str, Any]:
    """Two versions, a 50/50 split, 15 scores each: v2 clearly better; the split."""
    publish_two_versions(client, name, label)
    split = start_split(client, name, label)
    log_scored(client, name, split, 1, LOW_SCORES, label=label)
    log_scored(client, name, split, 2, HIGH_SCORES, label=label)
    return split
