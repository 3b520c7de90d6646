"""Structured answers: parsed and checked against the template's json_schema, or refused; the
tracer logs a call whose answer misses its schema as an error."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser

from promptserve.prompts import ModelOutputError, RegistryPrompt, StructuredAnswer
from promptserve.tracing import PromptLayerTracer
from tests.unit.prompts.templates import installed, raw_template
from tests.utils.fake_delivery import FakeDelivery


def extract(*answers: str) -> RegistryPrompt:
    prompt = RegistryPrompt("extract")
    installed(prompt, raw_template("extract", version=5), *answers)
    return prompt


def test_an_answer_that_fits_is_its_json_value() -> None:
    chain = extract('{"name": "Ann", "sentiment": "positive"}').structured()
    assert chain.invoke({"text": "Ann is great"}) == {"name": "Ann", "sentiment": "positive"}
    assert isinstance(chain.last, StructuredAnswer)  # type: ignore[attr-defined]
    assert chain.last.name == "extract_answer"  # type: ignore[attr-defined]


async def test_an_answer_that_is_not_json_is_refused() -> None:
    chain = extract("Ann, positive").structured()
    with pytest.raises(ModelOutputError, match="not JSON") as raised:
        await chain.ainvoke({"text": "Ann is great"})
    assert (raised.value.prompt_name, raised.value.version) == ("extract", 5)
    assert str(raised.value).startswith("prompt 'extract' version 5: the model's answer")


@pytest.mark.parametrize(
    ("answer", "where"),
    [
        ('{"name": "Ann"}', "(top level)"),
        ('{"name": "Ann", "sentiment": "ecstatic"}', "sentiment"),
        ('{"name": 3, "sentiment": "neutral"}', "name"),
        ('["Ann", "positive"]', "(top level)"),
    ],
)
def test_an_answer_that_misses_the_schema_is_refused(answer: str, where: str) -> None:
    with pytest.raises(ModelOutputError) as raised:
        extract(answer).structured().invoke({"text": "t"})
    assert raised.value.problem.startswith(f"the model's answer does not fit the schema at {where}")


def test_without_a_json_schema_any_json_passes_but_text_does_not() -> None:
    prompt = RegistryPrompt("example")
    installed(prompt, raw_template("example"), '["any", 1]', "plain words")
    chain = prompt.structured()
    assert chain.invoke({"product": "x"}) == ["any", 1]
    with pytest.raises(ModelOutputError, match="not JSON"):
        chain.invoke({"product": "x"})


def test_a_plain_string_is_checked_too() -> None:
    answer = StructuredAnswer(extract())
    assert answer.invoke('{"name": "B", "sentiment": "neutral"}') == {  # type: ignore[arg-type]
        "name": "B", "sentiment": "neutral"
    }
    assert answer.invoke(AIMessage('{"name": "B", "sentiment": "negative"}'))["sentiment"] \
        == "negative"


RESPONSE_FORMAT: dict[str, Any] = raw_template("extract")["metadata"]["model"]["parameters"][
    "response_format"
]


async def test_the_tracer_logs_an_answer_missing_its_schema_as_an_error() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=[])  # type: ignore[arg-type]
    model = FakeListChatModel(
        responses=['{"name": "Ann", "sentiment": "positive"}', '{"name": "Ann"}', "no JSON"]
    ).bind(response_format=RESPONSE_FORMAT)
    chain = model | StrOutputParser()
    for _ in range(3):
        await chain.ainvoke("Ann is great", {"callbacks": [tracer]})
    fits, misses, words = delivery.bodies
    assert (fits["status"], fits["error_type"], fits["error_message"]) == ("SUCCESS", None, None)
    assert (misses["status"], misses["error_type"]) == ("ERROR", "UNKNOWN_ERROR")
    assert misses["error_message"].startswith(
        "OutputSchemaError: the model's answer does not fit the schema")
    assert "sentiment" in misses["error_message"]
    assert (words["status"], words["error_type"]) == ("ERROR", "UNKNOWN_ERROR")
    assert "not JSON" in words["error_message"]
    # The answer is still logged: the registry's history shows what the model said.
    (message,) = misses["output"]["messages"]
    assert message["content"] == [{"type": "text", "text": '{"name": "Ann"}'}]


async def test_a_registry_prompts_call_is_logged_against_its_schema() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=[])  # type: ignore[arg-type]
    prompt = RegistryPrompt("extract")
    version = installed(prompt, raw_template("extract", version=5), '{"name": "Ann"}')
    # As ChatOpenAI sends the template's response_format with every call.
    prompt.install(type(version)(
        template=version.template, prompt=version.prompt, input_type=version.input_type,
        model=version.model.bind(response_format=version.response_format),
    ))
    with pytest.raises(ModelOutputError):
        await prompt.structured().ainvoke({"text": "Ann"}, {"callbacks": [tracer]})
    (body,) = delivery.bodies
    assert (body["status"], body["error_type"]) == ("ERROR", "UNKNOWN_ERROR")
    assert (body["prompt_name"], body["prompt_version_number"]) == ("extract", 5)
    assert body["prompt_input_variables"] == {"text": "Ann"}


async def test_a_call_without_a_json_schema_is_not_checked() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=[])  # type: ignore[arg-type]
    model = FakeListChatModel(responses=["no JSON"]).bind(response_format={"type": "json_object"})
    assert (await model.ainvoke("hi", {"callbacks": [tracer]})).content == "no JSON"
    assert delivery.bodies[0]["status"] == "SUCCESS"
