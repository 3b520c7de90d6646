"""Scores, metadata, prompt links and groups via the SDK (sync and async), checked in the store."""

from __future__ import annotations

import time

import httpx
import pytest
from promptlayer import AsyncPromptLayer, PromptLayer
from promptlayer.exceptions import PromptLayerAPIError, PromptLayerNotFoundError

from app.backend.store.requests import get_request
from tests.integration.backend.conftest import API_KEY, Backend, chat

BLUEPRINT = {"type": "chat", "messages": []}


def new_request(pl: PromptLayer, **extra: object) -> int:
    now = time.time()
    result = pl.log_request(
        provider="openai",
        model="m",
        input=BLUEPRINT,
        output=BLUEPRINT,
        request_start_time=now,
        request_end_time=now,
        **extra,
    )
    return int(result["id"])


def stored(backend: Backend, request_id: int) -> dict:
    return backend.read(lambda c: get_request(c, request_id=request_id))


def test_scores(pl: PromptLayer, backend: Backend) -> None:
    rid = new_request(pl)
    assert pl.track.score(rid, 40) is True
    assert pl.track.score(rid, 90, "helpful") is True
    assert pl.track.score(str(rid), 70) is True  # digit string accepted; same name overwrites
    assert stored(backend, rid)["scores"] == {"default": 70, "helpful": 90}


def test_metadata_merge(pl: PromptLayer, backend: Backend) -> None:
    rid = new_request(pl, metadata={"a": "1", "b": "2"})
    assert pl.track.metadata(rid, {"b": "3", "c": "4"}) is True
    assert stored(backend, rid)["metadata"] == {"a": "1", "b": "3", "c": "4"}


def test_track_prompt(pl: PromptLayer, backend: Backend, name: str) -> None:
    v1 = pl.templates.publish({"prompt_name": name, "prompt_template": chat("{x}")})
    v2 = pl.templates.publish(
        {"prompt_name": name, "prompt_template": chat("{x}!"), "release_labels": ["prod"]}
    )
    rid = new_request(pl)
    assert pl.track.prompt(rid, name, {"x": "1"}, version=1) is True
    row = stored(backend, rid)
    assert (row["prompt_version_id"], row["prompt_input_variables"]) == (
        v1["prompt_version_id"],
        {"x": "1"},
    )
    assert pl.track.prompt(rid, name, {"x": "2"}, label="prod") is True
    assert stored(backend, rid)["prompt_version_id"] == v2["prompt_version_id"]
    with pytest.raises(PromptLayerAPIError, match="label 'nope'"):
        pl.track.prompt(rid, name, {}, label="nope")


def test_groups(pl: PromptLayer, backend: Backend) -> None:
    rid = new_request(pl)
    group = pl.group.create()
    assert isinstance(group, int)
    assert pl.track.group(rid, group) is True
    assert stored(backend, rid)["group_id"] == group
    assert pl.group.create() == group + 1


def test_unknown_request_id_is_404(pl: PromptLayer, backend: Backend) -> None:
    missing = 10**12
    # The sync SDK rewraps score/metadata/prompt errors as a generic API error.
    with pytest.raises(PromptLayerAPIError, match="request_id 1000000000000 not found"):
        pl.track.score(missing, 5)
    with pytest.raises(PromptLayerNotFoundError):
        pl.track.group(missing, pl.group.create())
    rid = new_request(pl)
    with pytest.raises(PromptLayerNotFoundError, match="group_id"):
        pl.track.group(rid, missing)
    for path, body in [
        ("/library-track-score", {"score": 1}),
        ("/library-track-metadata", {"metadata": {}}),
        ("/library-track-prompt", {"prompt_name": "x", "prompt_input_variables": {}}),
        ("/track-group", {"group_id": 1}),
    ]:
        answer = httpx.post(
            f"{backend.url}{path}", json={**body, "request_id": missing, "api_key": API_KEY}
        )
        assert answer.status_code == 404, path
        assert "request_id" in answer.json()["message"]


async def test_async_tracking(apl: AsyncPromptLayer, pl: PromptLayer, backend: Backend) -> None:
    rid = new_request(pl)
    assert await apl.track.score(rid, 55, "async") is True
    assert await apl.track.metadata(rid, {"via": "async"}) is True
    group = await apl.group.create()
    assert await apl.track.group(rid, group) is True
    row = stored(backend, rid)
    assert (row["scores"], row["metadata"], row["group_id"]) == (
        {"async": 55},
        {"via": "async"},
        group,
    )
    with pytest.raises(PromptLayerNotFoundError):
        await apl.track.score(10**12, 5)
