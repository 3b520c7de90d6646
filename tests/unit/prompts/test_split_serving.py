"""Split labels in the store: arms built ahead, sticky choice per key, refreshes, the log."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from scipy.stats import binom

from promptserve.prompts import (
    PINS_KEY,
    RELEASE_KEY,
    RELEASE_METADATA,
    PromptStore,
    RegistryPrompt,
    Split,
    bucket,
)
from promptserve.prompts._caller import CallerError, caller_headers
from promptserve.tracing._links import link_of
from tests.unit.prompts.templates import raw_template


def test_the_bucket_is_sha256_of_release_and_key() -> None:
    digest = hashlib.sha256(b"r-1:alice").digest()
    assert bucket("r-1", "alice") == int.from_bytes(digest[:8], "big") % 10_000
    assert bucket("r-1", "alice") == bucket("r-1", "alice")
    assert 0 <= bucket("r-1", "\U0001f600 \u202e\ud800") < 10_000  # odd text still hashes


class Registry:
    """Versions 1-5 of `slogan`, the label `prod` on `label_version`; a split to read."""

    def __init__(self) -> None:
        self.label_version = 3
        self.split: dict[str, Any] | None = None
        self.fetched: list[tuple[str, str | None, int | None]] = []
        self.split_down = False

    def template(self, version: int) -> dict[str, Any]:
        template = raw_template("example", version=version)
        return {**template, "prompt_name": "slogan"}

    async def fetch(self, prompt: RegistryPrompt) -> Mapping[str, Any]:
        self.fetched.append(prompt.selector)
        number = prompt.version if prompt.version is not None else self.label_version
        copied: dict[str, Any] = json.loads(json.dumps(self.template(number)))
        return copied

    async def fetch_split(self, prompt: RegistryPrompt) -> Split | None:
        if self.split_down:
            raise ConnectionError("backend down")
        if self.split is None:
            return None
        return Split.from_json(self.split, template=prompt.prompt_name,
                               label=prompt.label or "")


def answering_version(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
    return FakeListChatModel(responses=["answer"])


def split_of(weights: dict[int, int], release_id: str = "r-1",
             segments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"control": min(weights), "release_id": release_id, "segments": segments,
            "arms": [{"version": v, "weight": w} for v, w in weights.items()]}


def store_for(registry: Registry, prompt: RegistryPrompt) -> PromptStore:
    return PromptStore([prompt], fetch=registry.fetch, build_model=answering_version,
                       fetch_split=registry.fetch_split)


async def test_every_version_of_a_split_is_built_at_start() -> None:
    registry = Registry()
    registry.split = split_of({3: 50, 4: 50})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    release = store.release_of(prompt)
    assert release is not None and sorted(release.versions) == [3, 4]
    # The label's own version is reused for arm 3; only version 4 is fetched by number.
    assert registry.fetched == [("slogan", "prod", None), ("slogan", None, 4)]


async def test_the_same_key_gets_the_same_version_and_shares_follow_weights() -> None:
    registry = Registry()
    registry.split = split_of({3: 20, 4: 80})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    pins = [store.pins([prompt], {RELEASE_KEY: f"user-{i}"}) for i in range(2000)]
    again = [store.pins([prompt], {RELEASE_KEY: f"user-{i}"}) for i in range(2000)]
    served = [p.versions[prompt.selector].number for p in pins]
    assert served == [p.versions[prompt.selector].number for p in again]
    low, high = binom.interval(0.999, 2000, 0.8)
    assert low <= served.count(4) <= high
    arm = pins[0].arms[prompt.selector]  # type: ignore[index]
    assert arm.release_id == "r-1" and arm.label == "prod"


async def test_without_a_key_each_run_draws_at_random() -> None:
    registry = Registry()
    registry.split = split_of({3: 50, 4: 50})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    served = {store.pins([prompt], {}).versions[prompt.selector].number for _ in range(100)}
    assert served == {3, 4}
    served = {store.pins([prompt], {RELEASE_KEY: ""}).versions[prompt.selector].number
              for _ in range(100)}
    assert served == {3, 4}  # an empty key is no key


async def test_a_segment_gets_its_own_arms() -> None:
    registry = Registry()
    registry.split = split_of({3: 50, 4: 50}, segments={
        "key": "plan", "values": {"pro": [{"version": 5, "weight": 100}]}})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    for i in range(50):
        pro = store.pins([prompt], {RELEASE_KEY: str(i), RELEASE_METADATA: {"plan": "pro"}})
        assert pro.versions[prompt.selector].number == 5
        other = store.pins([prompt], {RELEASE_KEY: str(i), RELEASE_METADATA: {"plan": "free"}})
        assert other.versions[prompt.selector].number in (3, 4)


async def test_a_split_change_is_picked_up_by_the_next_refresh() -> None:
    registry = Registry()
    registry.split = split_of({3: 50, 4: 50})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    in_flight = store.pins([prompt], {RELEASE_KEY: "k"})
    first = in_flight.versions[prompt.selector].number

    registry.split = split_of({3: 0, 4: 100}, release_id="r-2")
    assert await store.refresh_once() == ["slogan"]
    assert all(store.pins([prompt], {RELEASE_KEY: str(i)}).versions[prompt.selector].number
               == 4 for i in range(50))
    assert in_flight.versions[prompt.selector].number == first  # a run keeps its version
    assert await store.refresh_once() == []  # the same split again: nothing to do

    registry.split_down = True  # a failed read keeps what is served
    assert await store.refresh_once() == []
    assert store.release_of(prompt) is not None

    registry.split_down = False
    registry.split = None  # the split ended; the label serves alone
    assert await store.refresh_once() == ["slogan"]
    pins = store.pins([prompt], {RELEASE_KEY: "k"})
    assert pins.arms is None and pins.versions[prompt.selector].number == 3


async def test_a_split_whose_version_cannot_be_built_is_not_served() -> None:
    registry = Registry()
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()

    async def broken(arm: RegistryPrompt) -> Mapping[str, Any]:
        if arm.version == 9:
            raise ConnectionError("no such version")
        return await registry.fetch(arm)

    store._fetch = broken
    registry.split = split_of({3: 50, 9: 50})
    assert await store.refresh_once() == []
    assert store.release_of(prompt) is None


async def test_a_declared_split_needs_no_backend() -> None:
    registry = Registry()
    registry.split_down = True
    prompt = RegistryPrompt("slogan", label="prod", split={3: 50, 4: 50}, control=3)
    store = store_for(registry, prompt)
    await store.load()
    release = store.release_of(prompt)
    assert release is not None and release.split.release_id.startswith("declared-")


def test_two_different_declarations_of_one_label_are_refused() -> None:
    registry = Registry()
    with pytest.raises(ValueError, match="two different splits"):
        PromptStore(
            [RegistryPrompt("slogan", split={3: 50, 4: 50}, control=3),
             RegistryPrompt("slogan", split={3: 10, 4: 90}, control=3)],
            fetch=registry.fetch, build_model=answering_version,
        )


async def test_a_plain_label_pins_without_arms() -> None:
    registry = Registry()
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    pins = store.pins([prompt], {RELEASE_KEY: "k"})
    assert pins.arms is None and pins.release_arms() == {}


async def test_the_call_is_linked_with_the_release_and_arm() -> None:
    registry = Registry()
    registry.split = split_of({3: 50, 4: 50})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    links: list[Any] = []

    class Links(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                                **kwargs: Any) -> None:
            links.append(link_of(run_id))

    pins = store.pins([prompt], {RELEASE_KEY: "alice"})
    config: Any = {"configurable": {PINS_KEY: pins}, "callbacks": [Links()]}
    await (prompt | StrOutputParser()).ainvoke({"product": "x"}, config)
    served = pins.versions[prompt.selector].number
    assert links[0].tags == ("release:prod", f"arm:v{served}")
    assert links[0].metadata == {"promptserve_release": "r-1",
                                 "promptserve_arm": f"v{served}"}
    assert links[0].prompt.version == served
    assert pins.release_arms() == {
        "slogan": {"label": "prod", "version": served, "release_id": "r-1"}}


def test_caller_headers_are_read_and_bounded() -> None:
    key, metadata = caller_headers([
        (b"host", b"x"), (b"x-promptserve-key", "k\u00e9y".encode()),
        (b"x-promptserve-metadata-plan", b"pro"), (b"x-promptserve-metadata-", b"ignored"),
    ])
    assert key == "k\u00e9y" and metadata == {"plan": "pro"}
    assert caller_headers([(b"x-promptserve-key", b"\xff\xfe")])[0] == "\xff\xfe"
    assert caller_headers([(b"accept", b"*/*")]) == (None, None)
    with pytest.raises(CallerError, match="longer than 512"):
        caller_headers([(b"x-promptserve-key", b"k" * 513)])


def test_random_keys_spread_evenly_over_buckets() -> None:
    rng = random.Random(7)
    buckets = [bucket("r-1", f"{rng.random()}") for _ in range(4000)]
    low, high = binom.interval(0.999, 4000, 0.5)
    assert low <= sum(b < 5000 for b in buckets) <= high


async def test_a_split_labels_own_version_is_its_control() -> None:
    # The registry resolves a split label at random per fetch: here to the challenger.
    registry = Registry()
    registry.label_version = 4
    registry.split = split_of({3: 50, 4: 50})
    prompt = RegistryPrompt("slogan")
    store = store_for(registry, prompt)
    await store.load()
    assert store.current_for(prompt).number == 3
    registry.fetched.clear()
    await store.refresh_once()
    assert registry.fetched == []  # no label fetch while split: nothing would be served of it
    registry.split, registry.label_version = None, 4  # promoted: the label moved to 4
    assert await store.refresh_once() == ["slogan"]
    assert store.current_for(prompt).number == 4
    assert store.release_of(prompt) is None
