"""Chain catalog: specs, typed chains, raw template fetching, input models."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chains.catalog import (
    CATALOG,
    TEMPLATES_DIR,
    ChainSpec,
    afetch_template,
    build_chain,
    fetch_template,
    registry_params,
)
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import JsonOutputParser
from pydantic import ValidationError

from promptserve.prompts.convert import prompt_from_blueprint
from promptserve.prompts.errors import TemplateConversionError
from promptserve.prompts.inputs import input_model


def example_template() -> dict[str, Any]:
    data = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    return {
        "id": 1,
        "prompt_name": data["name"],
        "version": 3,
        "prompt_template": data["blueprint"],
        "metadata": data["metadata"],
    }


def test_spec_defaults_and_validation() -> None:
    spec = ChainSpec(path="/ads/short", prompt_name="ads")
    assert (spec.name, spec.label, spec.version, spec.output) == ("ads_short", "prod", None, "str")
    assert ChainSpec(path="/a", prompt_name="a", version=2).label is None
    with pytest.raises(ValueError, match="not both"):
        ChainSpec(path="/a", prompt_name="a", label="prod", version=1)
    for path in ("a", "/a/", "/"):
        with pytest.raises(ValueError, match="must look like"):
            ChainSpec(path=path, prompt_name="a")
    with pytest.raises(ValueError, match="version"):
        ChainSpec(path="/a", prompt_name="a", version=0)


def test_catalog_serves_the_example() -> None:
    (spec,) = CATALOG
    assert (spec.path, spec.name, spec.prompt_name, spec.label, spec.output) == (
        "/example", "example", "example", "prod", "str"
    )
    assert registry_params(spec) == {"label": "prod", "skip_input_variable_rendering": True}
    versioned = ChainSpec(path="/v", prompt_name="v", version=4)
    assert registry_params(versioned) == {"version": 4, "skip_input_variable_rendering": True}


def test_example_chain_is_typed_and_tagged() -> None:
    chain = build_chain(CATALOG[0], example_template(), api_key="k", base_url="http://127.0.0.1:9")
    schema = chain.get_input_jsonschema()
    assert schema["properties"] == {"product": {"title": "Product", "type": "string"}}
    assert schema["required"] == ["product"]
    with pytest.raises(ValidationError):
        chain.input_schema.model_validate({})
    with pytest.raises(ValidationError):
        chain.input_schema.model_validate({"product": 3})
    assert chain.get_output_jsonschema()["type"] == "string"
    config = getattr(chain, "config", {})
    assert config["run_name"] == "example"
    assert config["metadata"]["promptlayer_prompt_version"] == 3


def test_example_prompt_text() -> None:
    prompt = prompt_from_blueprint(example_template()["prompt_template"], template_name="example")
    messages = prompt.invoke({"product": "toasters"}).to_messages()
    assert messages[-1] == HumanMessage(
        "Write a one-sentence slogan for a company that makes toasters."
    )


def test_json_output_and_model_overrides() -> None:
    spec = ChainSpec(
        path="/j", prompt_name="example", output="json", model_parameters={"temperature": 0}
    )
    chain = build_chain(spec, example_template(), api_key="k", base_url=None)
    sequence = chain.bound  # type: ignore[attr-defined]
    assert isinstance(sequence.last, JsonOutputParser)
    assert sequence.steps[1].temperature == 0


def test_a_given_model_replaces_chatopenai_without_keys() -> None:
    fake = GenericFakeChatModel(messages=iter([AIMessage("A slogan.")]))
    chain = build_chain(CATALOG[0], example_template(), api_key=None, base_url=None, model=fake)
    assert chain.bound.steps[1] is fake  # type: ignore[attr-defined]
    assert chain.invoke({"product": "toasters"}) == "A slogan."


def test_a_given_model_still_checks_the_template_model() -> None:
    template = example_template()
    template["metadata"]["model"]["provider"] = "anthropic"
    fake = GenericFakeChatModel(messages=iter([]))
    with pytest.raises(TemplateConversionError, match="provider 'anthropic'"):
        build_chain(CATALOG[0], template, api_key=None, base_url=None, model=fake)


def test_template_without_model_metadata_is_refused() -> None:
    template = {**example_template(), "metadata": {}}
    with pytest.raises(TemplateConversionError, match="'example'.*metadata.model"):
        build_chain(CATALOG[0], template, api_key="k", base_url=None)


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
    assert fetch_template(client, CATALOG[0]) == {"prompt_name": "example"}  # type: ignore[arg-type]
    assert client.templates.calls == [
        ("example", {"label": "prod", "skip_input_variable_rendering": True})
    ]
    with pytest.raises(ValueError, match="cache_ttl_seconds"):
        fetch_template(_Client(cache=object()), CATALOG[0])  # type: ignore[arg-type]


async def test_async_fetch() -> None:
    client = _Client()
    client.templates = _AsyncTemplates()
    result = await afetch_template(client, CATALOG[0])  # type: ignore[arg-type]
    assert result == {"prompt_name": "example"}


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


def test_package_exports() -> None:
    import chains

    assert sorted(chains.__all__) == sorted(
        name for name in dir(chains) if not name.startswith("_") and name not in {
            "catalog", "convert", "errors", "inputs", "model", "annotations"
        }
    )


def test_specs_are_hashable() -> None:
    spec = ChainSpec(path="/a", prompt_name="a", model_parameters={"temperature": 0})
    assert {spec: 1}[ChainSpec(path="/a", prompt_name="a", model_parameters={"temperature": 0})]
