"""registry_prompts_in: the registry prompts a composed runnable uses, found by walking it."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import (
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)

from promptserve import Chain
from promptserve.prompts import RegistryPrompt, StructuredAnswer, registry_prompts_in

# Typed Any: LangChain types `|` by input and output, which these compositions mix.
a: Any = RegistryPrompt("a")
b: Any = RegistryPrompt("b")
c: Any = RegistryPrompt("c")
d: Any = RegistryPrompt("d")


def names(found: list[RegistryPrompt]) -> list[str]:
    return [p.prompt_name for p in found]


def test_a_prompt_alone_and_nothing_at_all() -> None:
    assert registry_prompts_in(a) == [a]
    assert registry_prompts_in(RunnableLambda(lambda x: x) | StrOutputParser()) == []


def test_sequences_in_order_each_prompt_once() -> None:
    chain = a | StrOutputParser() | (lambda s: {"x": s}) | b | StrOutputParser() | a
    assert registry_prompts_in(chain) == [a, b]


def test_parallels_of_dict_steps() -> None:
    chain = {"one": a | StrOutputParser(), "two": itemgetter("x") | RunnableLambda(str),
             "three": {"nested": b}} | c
    assert names(registry_prompts_in(chain)) == ["a", "b", "c"]
    assert registry_prompts_in(RunnableParallel(left=a, right=d)) == [a, d]


def test_passthrough_assign() -> None:
    chain = RunnablePassthrough.assign(slogan=a | StrOutputParser()) \
        | {"slogan": itemgetter("slogan"), "critique": b | StrOutputParser()}
    assert registry_prompts_in(chain) == [a, b]


def test_retries_fallbacks_and_bindings() -> None:
    assert registry_prompts_in(a.with_retry(stop_after_attempt=2)) == [a]
    assert registry_prompts_in(a.with_fallbacks([b, c | StrOutputParser()])) == [a, b, c]
    assert registry_prompts_in(a.with_config(tags=["t"]) | b.bind(stop=["x"])) == [a, b]
    assert registry_prompts_in((a | StrOutputParser()).with_types(output_type=str)) == [a]


def test_the_runnables_a_lambda_uses() -> None:
    async def both(inputs: dict[str, Any], config: RunnableConfig) -> Any:
        first = await c.ainvoke(inputs, config)
        return await d.ainvoke({"x": first.text}, config)

    assert registry_prompts_in(RunnableLambda(both)) == [c, d]


def test_a_structured_answer_names_its_prompt() -> None:
    assert registry_prompts_in(StructuredAnswer(b)) == [b]
    assert registry_prompts_in(a.structured()) == [a]
    assert registry_prompts_in({"x": c.structured()} | StructuredAnswer(d)) == [c, d]


def test_two_declarations_of_one_selector_are_both_found() -> None:
    again: Any = RegistryPrompt("a")
    assert registry_prompts_in(a | again) == [a, again]


def test_a_chain_adds_the_prompts_it_declares_after_those_found() -> None:
    chain = Chain("/x", a | StrOutputParser(), prompts=[b, a])
    assert chain.registry_prompts == [a, b]
    assert chain.name == "x"
    assert Chain("/n/m", a).name == "n_m"
