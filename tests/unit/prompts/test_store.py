"""PromptStore: raw template fetching, loading, refreshing, the disk cache, and run pins."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from promptserve.prompts import (
    PINS_KEY,
    PromptNotLoadedError,
    PromptStartupError,
    PromptStore,
    RegistryPrompt,
    TemplateCache,
    _store,
    afetch_template,
    fetch_template,
    load_prompt,
    registry_params,
)
from tests.unit.prompts.templates import fake_models, raw_template

# -- fetching --------------------------------------------------------------------------------


def test_registry_params_ask_for_the_raw_template_by_label_or_version() -> None:
    assert registry_params(RegistryPrompt("example")) == {
        "label": "prod", "skip_input_variable_rendering": True
    }
    assert registry_params(RegistryPrompt("example", label="beta")) == {
        "label": "beta", "skip_input_variable_rendering": True
    }
    assert registry_params(RegistryPrompt("v", version=4)) == {
        "version": 4, "skip_input_variable_rendering": True
    }


class _Templates:
    def __init__(self, cache: object = None) -> None:
        self._cache = cache
        self.calls: list[tuple[str, Any]] = []

    def get(self, name: str, params: Any) -> dict[str, Any]:
        self.calls.append((name, params))
        return {"prompt_name": name}


class _Client:
    def __init__(self, cache: object = None) -> None:
        self.templates = _Templates(cache)


class _AsyncTemplates(_Templates):
    async def get(self, name: str, params: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().get(name, params)


def test_fetch_asks_for_the_raw_labelled_template() -> None:
    client = _Client()
    prompt = RegistryPrompt("example")
    assert fetch_template(client, prompt) == {"prompt_name": "example"}
    assert client.templates.calls == [
        ("example", {"label": "prod", "skip_input_variable_rendering": True})
    ]


def test_fetch_refuses_a_client_with_the_sdks_template_cache() -> None:
    # The SDK renders cached templates itself and can blank every variable.
    client = _Client(cache=object())
    with pytest.raises(ValueError, match="cache_ttl_seconds"):
        fetch_template(client, RegistryPrompt("example"))
    assert client.templates.calls == []


async def test_async_fetch() -> None:
    client = _Client()
    client.templates = _AsyncTemplates()
    result = await afetch_template(client, RegistryPrompt("v", version=2))
    assert result == {"prompt_name": "v"}
    assert client.templates.calls == [("v", {"version": 2, "skip_input_variable_rendering": True})]
    cached = _Client()
    cached.templates = _AsyncTemplates(cache=object())
    with pytest.raises(ValueError, match="cache_ttl_seconds"):
        await afetch_template(cached, RegistryPrompt("v"))


class _RegistryTemplates(_Templates):
    def get(self, name: str, params: Any) -> dict[str, Any]:
        super().get(name, params)
        return raw_template(name, version=6)


def test_load_prompt_fetches_builds_and_installs_a_version() -> None:
    client = _Client()
    client.templates = _RegistryTemplates()
    prompt = RegistryPrompt("example", label="beta")
    version = load_prompt(prompt, client=client,
                          build_model=fake_models({"example": ["Loaded."]}))
    assert (version.name, version.number) == ("example", 6)
    assert client.templates.calls == [
        ("example", {"label": "beta", "skip_input_variable_rendering": True})
    ]
    assert prompt.version_for(None) is version
    assert (prompt | StrOutputParser()).invoke({"product": "x"}) == "Loaded."
    assert prompt.prompt_template() is version.prompt


def test_load_prompt_without_a_promptlayer_key_says_the_prompt_is_not_loaded() -> None:
    # The test environment has no PROMPTLAYER_API_KEY (tests/conftest.py).
    with pytest.raises(PromptNotLoadedError, match="'example'"):
        load_prompt(RegistryPrompt("example"))


def test_a_prompt_used_outside_a_served_run_loads_itself_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[RegistryPrompt] = []

    def load(prompt: RegistryPrompt) -> Any:
        loaded.append(prompt)
        client = _Client()
        client.templates = _RegistryTemplates()
        return load_prompt(prompt, client=client,
                           build_model=fake_models({"slogan": ["Once.", "Twice."]}))

    monkeypatch.setattr(_store, "load_prompt", load)
    prompt = RegistryPrompt("slogan")
    chain = prompt | StrOutputParser()
    assert [chain.invoke({"product": "x"}) for _ in range(2)] == ["Once.", "Twice."]
    assert loaded == [prompt]


# -- a registry that moves ---------------------------------------------------------------------


class Registry:
    """Templates by prompt name; `publish` makes a new version the label's."""

    def __init__(self, *files: str) -> None:
        self.templates: dict[str, dict[str, Any]] = {}
        for number, file in enumerate(files, start=1):
            self.templates[raw_template(file)["prompt_name"]] = raw_template(
                file, template_id=number
            )
        self.fetched: list[tuple[str, str | None, int | None]] = []
        self.down = False

    def publish(self, name: str, **changes: Any) -> None:
        current = self.templates[name]
        self.templates[name] = {**current, "version": current["version"] + 1, **changes}

    async def fetch(self, prompt: RegistryPrompt) -> Mapping[str, Any]:
        self.fetched.append(prompt.selector)
        if self.down:
            raise ConnectionError("registry down")
        copied: dict[str, Any] = json.loads(json.dumps(self.templates[prompt.prompt_name]))
        return copied


def version_models(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
    """A model answering which template it was built from: its name and temperature."""
    answer = f"{name} at {metadata['parameters']['temperature']}"
    return FakeListChatModel(responses=[answer])


def store_of(registry: Registry, *prompts: RegistryPrompt,
             cache: TemplateCache | None = None) -> PromptStore:
    return PromptStore(prompts, fetch=registry.fetch, build_model=version_models, cache=cache)


async def test_load_builds_a_version_of_every_prompt_once_per_selector() -> None:
    registry = Registry("example", "slogan")
    example, again, slogan = RegistryPrompt("example"), RegistryPrompt("example"), \
        RegistryPrompt("slogan")
    store = store_of(registry, example, again, slogan)
    assert store.prompts == [example, slogan]
    with pytest.raises(PromptNotLoadedError):
        store.current_for(example)
    await store.load()
    assert registry.fetched == [("example", "prod", None), ("slogan", "prod", None)]
    assert store.current_for(again) is store.current_for(example)
    assert (store.current_for(slogan).name, store.current_for(slogan).number) == ("slogan", 1)
    assert [v.name for v in store.current("example")] == ["example"]
    assert store.current("nothing") == []


async def test_load_refuses_a_template_it_cannot_serve() -> None:
    registry = Registry("example")
    registry.templates["example"]["metadata"] = {}
    store = store_of(registry, RegistryPrompt("example"))
    with pytest.raises(PromptStartupError, match="'example' version 1 cannot be served"):
        await store.load()


async def test_load_falls_back_to_the_disk_copy_when_the_registry_is_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry("example")
    cache = TemplateCache(tmp_path / "templates")
    await store_of(registry, RegistryPrompt("example"), cache=cache).load()
    (cached,) = (tmp_path / "templates").iterdir()
    assert cached.name.startswith("example_label-prod.") and cached.suffix == ".json"

    registry.down = True
    store = store_of(registry, RegistryPrompt("example"), cache=cache)
    with caplog.at_level(logging.WARNING, logger="promptserve.prompts._store"):
        await store.load()
    assert store.current_for(RegistryPrompt("example")).template == raw_template("example")
    assert "serving cached template" in caplog.text

    empty = TemplateCache(tmp_path / "empty")
    with pytest.raises(PromptStartupError, match="'example' \\(label 'prod'\\).*no copy"):
        await store_of(registry, RegistryPrompt("example"), cache=empty).load()


def test_the_cache_keeps_one_file_per_selector(tmp_path: Path) -> None:
    cache = TemplateCache(tmp_path)
    cache.store(RegistryPrompt("a/b"), {"version": 1})
    cache.store(RegistryPrompt("a/b", version=3), {"version": 3})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n.split(".")[0] for n in names] == ["a_b_label-prod", "a_b_version-3"]
    assert cache.load(RegistryPrompt("a/b", version=3)) == {"version": 3}
    assert cache.load(RegistryPrompt("other")) is None
    # Names that read alike keep files of their own.
    assert cache.load(RegistryPrompt("a_b")) is None and cache.load(RegistryPrompt("a b")) is None
    cache.store(RegistryPrompt("a_b"), {"version": 7})
    assert cache.load(RegistryPrompt("a/b")) == {"version": 1}
    for labelled in tmp_path.glob("a_b_label-prod.*.json"):
        labelled.write_text("{not json")
    assert cache.load(RegistryPrompt("a/b")) is None


async def test_refresh_rebuilds_only_what_moved_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry("example", "slogan")
    example, slogan = RegistryPrompt("example"), RegistryPrompt("slogan")
    store = store_of(registry, example, slogan)
    await store.load()
    first = store.current_for(example)
    assert await store.refresh_once() == []
    assert store.current_for(example) is first

    registry.publish("example")
    assert await store.refresh_once() == ["example"]
    assert store.current_for(example).number == 2

    # A new version that cannot be built leaves the last good one served.
    registry.publish("example", metadata={})
    with caplog.at_level(logging.ERROR, logger="promptserve.prompts._store"):
        assert await store.refresh_once() == []
    assert store.current_for(example).number == 2
    assert "keeping the last good one" in caplog.text

    registry.down = True
    assert await store.refresh_once() == []
    assert store.current_for(example).number == 2


async def test_typing_types_the_prompts_with_the_stores_versions() -> None:
    registry = Registry("example")
    prompt = RegistryPrompt("example")
    store = store_of(registry, prompt)
    await store.load()
    assert "properties" not in prompt.get_input_jsonschema()  # nothing installed
    with store.typing():
        assert prompt.get_input_jsonschema()["required"] == ["product"]
    assert "properties" not in prompt.get_input_jsonschema()


async def test_loading_a_store_installs_nothing_on_the_prompts() -> None:
    # The store's versions reach a prompt only through a run's pins (or `typing`); outside
    # them the prompt would load itself, which needs PROMPTLAYER_API_KEY (unset here).
    registry = Registry("example")
    prompt = RegistryPrompt("example")
    store = store_of(registry, prompt)
    await store.load()
    with pytest.raises(PromptNotLoadedError):
        prompt.invoke({"product": "x"})
    config: Any = {"configurable": {PINS_KEY: store.pins([prompt])}}
    assert (prompt | StrOutputParser()).invoke({"product": "x"}, config) == "example at 0.7"


# -- pins ------------------------------------------------------------------------------------


async def test_a_version_published_mid_run_does_not_change_the_run() -> None:
    registry = Registry("example")
    prompt = RegistryPrompt("example")
    store = store_of(registry, prompt)
    await store.load()

    async def refresh_between(first: str) -> dict[str, str]:
        registry.publish("example", metadata={
            "model": {"provider": "openai", "name": "gpt-4o-mini",
                      "parameters": {"temperature": 0.1}},
        })
        assert await store.refresh_once() == ["example"]
        return {"product": first}

    answer = prompt | StrOutputParser()
    chain = answer | RunnableLambda(refresh_between) | answer
    pins = store.pins([prompt])
    assert pins.versions == {prompt.selector: store.current_for(prompt)}
    result = await chain.ainvoke({"product": "x"}, {"configurable": {PINS_KEY: pins}})
    assert result == "example at 0.7"  # the second call still ran version 1
    assert pins.called == {"example": 1}
    assert store.current_for(prompt).number == 2
    # The next run starts with version 2.
    later = store.pins([prompt])
    assert await answer.ainvoke({"product": "x"}, {"configurable": {PINS_KEY: later}}) \
        == "example at 0.1"
    assert later.called == {"example": 2}


async def test_a_prompt_not_pinned_at_the_start_is_pinned_at_its_first_call() -> None:
    registry = Registry("example")
    prompt = RegistryPrompt("example")
    store = store_of(registry, prompt)
    await store.load()

    async def refresh_between(first: str) -> dict[str, str]:
        registry.publish("example", metadata={
            "model": {"provider": "openai", "name": "m", "parameters": {"temperature": 0.2}},
        })
        await store.refresh_once()
        return {"product": first}

    pins = store.pins([])  # e.g. a prompt used inside a function, not declared
    assert pins.versions == {}
    answer = prompt | StrOutputParser()
    chain = answer | RunnableLambda(refresh_between) | answer
    assert await chain.ainvoke({"product": "x"}, {"configurable": {PINS_KEY: pins}}) \
        == "example at 0.7"
    assert [v.number for v in pins.versions.values()] == [1]


async def test_called_names_the_versions_called_in_first_call_order() -> None:
    registry = Registry("critique", "slogan")
    registry.publish("critique")
    registry.publish("critique")
    slogan, critique, unused = RegistryPrompt("slogan"), RegistryPrompt("critique"), \
        RegistryPrompt("example", version=1)
    registry.templates["example"] = raw_template("example")
    store = store_of(registry, slogan, critique, unused)
    await store.load()
    pins = store.pins([slogan, critique, unused])
    assert pins.called == {}
    chain = (slogan | StrOutputParser() | (lambda s: {"slogan": s}) | critique
             | StrOutputParser() | (lambda c: {"slogan": c}) | critique | StrOutputParser())
    assert await chain.ainvoke({"product": "x"}, {"configurable": {PINS_KEY: pins}}) \
        == "critique at 0.3"
    assert list(pins.called.items()) == [("slogan", 1), ("critique", 3)]
