"""RegistryPrompt: a declared registry prompt, its built versions, its typed input, its calls."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableBinding
from pydantic import ValidationError

import promptserve
import promptserve.prompts
import promptserve.server
from promptserve.prompts import (
    PINS_KEY,
    PromptNotLoadedError,
    PromptPins,
    RegistryPrompt,
    build_chat_model,
    build_version,
    input_model,
    prompt_from_blueprint,
)
from promptserve.prompts.errors import TemplateConversionError
from tests.unit.prompts.templates import fake_models, installed, raw_template


def test_a_prompt_follows_prod_unless_given_a_label_or_a_version() -> None:
    prompt = RegistryPrompt("ads")
    assert (prompt.prompt_name, prompt.label, prompt.version) == ("ads", "prod", None)
    assert prompt.selector == ("ads", "prod", None)
    assert RegistryPrompt("ads", label="beta").selector == ("ads", "beta", None)
    assert RegistryPrompt("ads", version=2).selector == ("ads", None, 2)
    assert repr(RegistryPrompt("ads", version=2)) == "RegistryPrompt('ads', version=2)"
    assert prompt.get_name() == "ads"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": ""}, "needs a name"),
        ({"name": "a", "label": "prod", "version": 1}, "not both"),
        ({"name": "a", "version": 0}, "version must be"),
        ({"name": "a", "version": "3"}, "version must be"),
    ],
)
def test_a_prompt_refuses_odd_declarations(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegistryPrompt(**arguments)


def test_a_prompt_without_a_version_says_so() -> None:
    # Without a version it would load itself, but the tests have no PROMPTLAYER_API_KEY.
    prompt = RegistryPrompt("example")
    with pytest.raises(PromptNotLoadedError, match="'example'"):
        prompt.invoke({"product": "toasters"})
    # Untyped until a version is known: any dict.
    assert prompt.get_input_jsonschema()["additionalProperties"] is True


def test_an_installed_example_is_typed_by_its_variables() -> None:
    prompt = RegistryPrompt("example")
    installed(prompt, raw_template("example"), "A slogan.")
    chain = prompt | StrOutputParser()
    schema = chain.get_input_jsonschema()
    assert schema["properties"] == {"product": {"title": "Product", "type": "string"}}
    assert schema["required"] == ["product"]
    assert schema["title"] == "example_input"
    model = prompt.get_input_schema()
    assert chain.get_input_schema() is model
    with pytest.raises(ValidationError):
        model.model_validate({})
    with pytest.raises(ValidationError):
        model.model_validate({"product": 3})
    with pytest.raises(ValidationError):
        model.model_validate({"product": "x", "unknown": "y"})
    assert chain.get_output_jsonschema()["type"] == "string"
    assert chain.invoke({"product": "toasters"}) == "A slogan."


async def test_every_entry_point_calls_the_installed_model() -> None:
    prompt = RegistryPrompt("example")
    installed(prompt, raw_template("example"), "Toast.")
    assert (await prompt.ainvoke({"product": "a"})).content == "Toast."
    assert "".join(str(c.content) for c in prompt.stream({"product": "b"})) == "Toast."
    assert "".join([str(c.content) async for c in prompt.astream({"product": "c"})]) == "Toast."


def test_example_prompt_text() -> None:
    template = raw_template("example")
    prompt = prompt_from_blueprint(template["prompt_template"], template_name="example")
    messages = prompt.invoke({"product": "toasters"}).to_messages()
    assert messages == [
        SystemMessage("You are a helpful copywriter. Answer with the slogan only."),
        HumanMessage("Write a one-sentence slogan for a company that makes toasters."),
    ]


def test_the_model_gets_the_formatted_messages_under_a_run_id_of_its_own() -> None:
    calls: list[tuple[list[Any], UUID]] = []

    class Messages(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], *,
                                run_id: UUID, **kwargs: Any) -> None:
            calls.append((messages[0], run_id))

    prompt = RegistryPrompt("slogan")
    installed(prompt, raw_template("slogan"), "Fresh.")
    given = uuid4()
    answer = prompt.invoke({"product": "bread"}, {"callbacks": [Messages()], "run_id": given})
    assert answer.content == "Fresh."
    ((messages, run_id),) = calls
    assert messages[-1] == HumanMessage("Write a slogan for bread.")
    # The caller's run id names the caller's run, never the model's.
    assert run_id != given


def test_a_given_model_replaces_chatopenai_without_keys() -> None:
    fake = GenericFakeChatModel(messages=iter([AIMessage("A slogan.")]))
    asked: list[tuple[str, Mapping[str, Any]]] = []

    def build(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
        asked.append((name, metadata))
        return fake

    version = build_version(raw_template("example", version=3, template_id=7), build)
    assert version.model is fake
    assert asked == [("example", raw_template("example")["metadata"]["model"])]
    assert (version.name, version.number, version.key) == ("example", 3, (7, 3))
    assert (version.ref.name, version.ref.version, version.ref.template_id) == ("example", 3, 7)
    assert version.ref.input_variable_names == ("product",)
    assert version.input_type.__name__ == "example_input"
    prompt = RegistryPrompt("example")
    prompt.install(version)
    assert (prompt | StrOutputParser()).invoke({"product": "toasters"}) == "A slogan."


def test_a_given_model_still_checks_the_template_model() -> None:
    template = raw_template("example")
    template["metadata"]["model"]["provider"] = "anthropic"
    asked: list[str] = []

    def build(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
        asked.append(name)
        return GenericFakeChatModel(messages=iter([]))

    with pytest.raises(TemplateConversionError, match="provider 'anthropic'"):
        build_version(template, build)
    assert asked == []  # refused before any model is built


def test_template_without_model_metadata_is_refused() -> None:
    template = {**raw_template("example"), "metadata": {}}
    with pytest.raises(TemplateConversionError, match="'example'.*metadata.model"):
        build_version(template, fake_models({"example": ["x"]}))


def test_a_blueprint_that_does_not_convert_is_refused() -> None:
    template = raw_template("example")
    template["prompt_template"]["messages"][0]["role"] = "narrator"
    with pytest.raises(TemplateConversionError, match="'example'") as raised:
        build_version(template, fake_models({"example": ["x"]}))
    assert raised.value.path is not None and "messages[0]" in raised.value.path


def test_the_blueprints_tools_are_bound_to_the_model() -> None:
    def build(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
        return build_chat_model(metadata, api_key="k", base_url="http://127.0.0.1:9/v1",
                                template_name=name)

    version = build_version(raw_template("assistant"), build)
    assert isinstance(version.model, RunnableBinding)
    (tool,) = version.model.kwargs["tools"]
    assert tool["function"]["name"] == "multiply"
    assert version.model.kwargs["tool_choice"] == "auto"
    schema = version.input_type.model_json_schema()
    assert schema["required"] == ["question", "scratchpad"]
    assert schema["properties"]["scratchpad"]["type"] == "array"


def test_the_runs_pins_win_over_the_installed_version() -> None:
    prompt = RegistryPrompt("example")
    installed(prompt, raw_template("example", version=1), "from v1")
    pinned = build_version(raw_template("example", version=2),
                           fake_models({"example": ["from v2"]}))
    pins = PromptPins(source=_Never(), versions={prompt.selector: pinned})
    config: Any = {"configurable": {PINS_KEY: pins}}
    assert prompt.version_for(config) is pinned
    assert (prompt | StrOutputParser()).invoke({"product": "x"}, config) == "from v2"
    assert (prompt | StrOutputParser()).invoke({"product": "x"}) == "from v1"
    # A value that is not PromptPins (a client's JSON) is ignored.
    assert prompt.version_for({"configurable": {PINS_KEY: {"example": 2}}}).number == 1
    assert pins.called == {"example": 2}


class _Never:
    def current_for(self, prompt: RegistryPrompt) -> Any:
        raise AssertionError(f"{prompt!r} was pinned at the run's start")


def test_input_model_types_and_odd_names() -> None:
    prompt = prompt_from_blueprint(
        {
            "type": "chat",
            "messages": [
                {"role": "placeholder", "name": "history"},
                {"role": "user", "content": [{"type": "text", "text": "{json} {model_name}"}]},
            ],
        },
        template_name="odd",
    )
    model = input_model(prompt, template_name="odd", model_name="odd input!")
    assert model.__name__ == "odd_input"
    value = model.model_validate(
        {"json": "j", "model_name": "m", "history": [{"type": "human", "content": "hi"}]}
    )
    assert value.json == "j"  # type: ignore[comparison-overlap]
    assert isinstance(value.history[0], HumanMessage)  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        model.model_validate({"json": "j", "model_name": "m", "history": [], "extra": 1})


def test_input_model_refuses_underscore_names() -> None:
    prompt = prompt_from_blueprint(
        {"type": "completion", "content": [{"type": "text", "text": "{_secret}"}]},
        template_name="u",
    )
    with pytest.raises(TemplateConversionError, match="'_secret'"):
        input_model(prompt, template_name="u")


@pytest.mark.parametrize("package", [promptserve, promptserve.prompts, promptserve.server])
def test_package_exports(package: types.ModuleType) -> None:
    public = {
        name for name, value in vars(package).items()
        if not name.startswith("_") and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    assert sorted(package.__all__) == sorted(public)
    assert all(getattr(package, name) is not None for name in package.__all__)
