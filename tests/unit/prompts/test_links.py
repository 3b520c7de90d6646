"""Per-call prompt links: each model call of a RegistryPrompt is logged against its own prompt
version, with the variables of that call and the prompt's tags."""

from __future__ import annotations

from operator import itemgetter
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnablePassthrough

from promptserve.prompts import RegistryPrompt
from promptserve.tracing import PromptLayerTracer, PromptRef
from promptserve.tracing._handler import prompt_tags
from promptserve.tracing._links import PromptCall, link_of
from tests.unit.prompts.templates import installed, raw_template
from tests.utils.fake_delivery import FakeDelivery


def critique_chain() -> Any:
    slogan, critique = RegistryPrompt("slogan", label="prod"), RegistryPrompt("critique")
    installed(slogan, raw_template("slogan", version=2, template_id=11), "Toast it.")
    installed(critique, raw_template("critique", version=4, template_id=12), "Too short.")
    return (
        RunnablePassthrough.assign(slogan=slogan | StrOutputParser())
        | {"slogan": itemgetter("slogan"), "critique": critique | StrOutputParser()}
    )


async def test_two_prompts_in_a_sequence_log_two_bodies_each_its_own_prompt() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=["route:/critique"],  # type: ignore[arg-type]
                               prompt=PromptRef("other", 9, 99, ("product",)))
    result = await critique_chain().ainvoke({"product": "toasters"}, {"callbacks": [tracer]})
    assert result == {"slogan": "Toast it.", "critique": "Too short."}
    first, second = delivery.bodies
    assert (first["prompt_name"], first["prompt_version_number"], first["prompt_id"]) == (
        "slogan", 2, 11
    )
    assert first["prompt_input_variables"] == {"product": "toasters"}
    assert first["tags"] == ["route:/critique", "prompt:slogan", "prompt_version:2",
                             "prompt_label:prod"]
    assert (second["prompt_name"], second["prompt_version_number"], second["prompt_id"]) == (
        "critique", 4, 12
    )
    # The second call's own variables, not the run's input.
    assert second["prompt_input_variables"] == {"slogan": "Toast it."}
    assert second["tags"] == ["route:/critique", "prompt:critique", "prompt_version:4",
                              "prompt_label:prod"]
    # One run: both calls under one root, grouped once the root ends.
    roots = {b["metadata"]["_langchain_root_run_id"] for b in delivery.bodies}
    assert len(roots) == 1
    assert await tracer.drain(1.0)
    assert delivery.tracked == [(1, 99), (2, 99)]


async def test_a_link_lasts_as_long_as_its_model_call() -> None:
    seen: list[tuple[UUID, PromptCall | None]] = []

    class Links(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                                **kwargs: Any) -> None:
            seen.append((run_id, link_of(run_id)))

    prompt = RegistryPrompt("example", version=3)
    installed(prompt, raw_template("example", version=3), "ok")
    await prompt.ainvoke({"product": "kettles", "ignored": "x"}, {"callbacks": [Links()]})
    ((run_id, call),) = seen
    assert call is not None
    assert (call.prompt.name, call.prompt.version, call.label) == ("example", 3, None)
    assert call.variables == {"product": "kettles"}
    assert link_of(run_id) is None


async def test_a_model_called_without_a_registry_prompt_keeps_the_tracers_prompt() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=[],  # type: ignore[arg-type]
                               prompt=PromptRef("example", 1, 7, ("product",)))
    chain = (itemgetter("product") | FakeListChatModel(responses=["plain"]) | StrOutputParser())
    assert await chain.ainvoke({"product": "a"}, {"callbacks": [tracer]}) == "plain"
    (body,) = delivery.bodies
    assert (body["prompt_name"], body["prompt_version_number"]) == ("example", 1)
    assert body["prompt_input_variables"] == {"product": "a"}
    assert body["tags"] == []


def test_prompt_tags() -> None:
    assert prompt_tags(PromptRef("p", 3), "beta") == ["prompt:p", "prompt_version:3",
                                                      "prompt_label:beta"]
    assert prompt_tags(PromptRef("p", 3)) == ["prompt:p", "prompt_version:3"]
    assert prompt_tags(PromptRef("p")) == ["prompt:p"]
