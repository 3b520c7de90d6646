"""Chains on ChatOpenAI/OpenAI against a fake OpenAI, traced into the real embedded backend."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI, OpenAI

from promptserve.tracing import LogDelivery, PromptLayerTracer, PromptRef
from tests.integration.tracing.conftest import Backend
from tests.utils.fake_openai import FakeOpenAI

TAGS = ["route:/example", "endpoint:invoke", "chain:example"]
BLUEPRINT = {
    "type": "chat",
    "input_variables": ["product"],
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You name products."}]},
        {"role": "user", "content": [{"type": "text", "text": "A name for {product}"}]},
    ],
}


def _model(
    base_url: str, http: httpx.AsyncClient, model: str = "gpt-4o-mini", **kwargs: Any
) -> ChatOpenAI:
    return ChatOpenAI(base_url=base_url, api_key="x", model=model, stream_usage=True,
                      temperature=0.5, http_async_client=http, **kwargs)


def _prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", "You name products."), ("user", "A name for {product}")]
    )


def _tracer(delivery: LogDelivery, prompt: PromptRef | None = None) -> PromptLayerTracer:
    return PromptLayerTracer(delivery, tags=TAGS, prompt=prompt, pl_tags=["pl"],
                             metadata={"langserve_endpoint": "invoke"})


@pytest.fixture
def prompt_ref(backend: Backend) -> PromptRef:
    published = backend.publish("example", BLUEPRINT)
    return PromptRef(name="example", version=published["version_number"],
                     template_id=published["id"], input_variable_names=("product",))


@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_chain_logs_one_request(
    mode: str, backend: Backend, fake_openai: tuple[FakeOpenAI, str], delivery: LogDelivery,
    prompt_ref: PromptRef, openai_http: httpx.AsyncClient
) -> None:
    fake, base_url = fake_openai
    tracer = _tracer(delivery, prompt_ref)
    chain = _prompt() | _model(base_url, openai_http) | StrOutputParser()
    config: Any = {"callbacks": [tracer]}
    if mode == "ainvoke":
        answer = await chain.ainvoke({"product": "toasters"}, config=config)
    else:
        answer = "".join([c async for c in chain.astream({"product": "toasters"}, config=config)])
    assert answer == "echo: A name for toasters"
    assert fake.requests[-1].get("stream", False) is (mode == "astream")

    (root,) = tracer.root_run_ids
    (request_id,) = await tracer.request_ids(root, timeout=5)
    assert isinstance(request_id, int)
    row = backend.request(request_id)
    assert row["status"] == "SUCCESS"
    assert row["provider"] == "openai"
    assert row["model"] == "gpt-4o-mini"
    assert row["function_name"] == "langchain.ChatOpenAI"
    assert row["parameters"] == {"temperature": 0.5}
    assert [(m["role"], m["content"][0]["text"]) for m in row["input"]["messages"]] == [
        ("system", "You name products."), ("user", "A name for toasters")]
    (out,) = row["output"]["messages"]
    assert (out["role"], out["content"]) == ("assistant",
                                             [{"type": "text", "text": answer}])
    assert (row["input_tokens"], row["output_tokens"]) == (7, 5)
    assert row["tags"] == sorted([*TAGS, "pl"])
    assert row["metadata"]["langserve_endpoint"] == "invoke"
    assert row["metadata"]["_langchain_root_run_id"] == str(root)
    assert row["idempotency_key"] == row["metadata"]["_langchain_run_id"]
    assert row["prompt_input_variables"] == {"product": "toasters"}
    (version,) = backend.rows("SELECT id FROM prompt_versions WHERE template_id = ?",
                              prompt_ref.template_id)
    assert row["prompt_version_id"] == version["id"]
    assert row["request_start_time"] <= row["request_end_time"]


async def test_two_llm_calls_are_one_group(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], delivery: LogDelivery,
    openai_http: httpx.AsyncClient,
) -> None:
    _, base_url = fake_openai
    tracer = _tracer(delivery)
    first = _prompt() | _model(base_url, openai_http) | StrOutputParser()
    second = ChatPromptTemplate.from_messages([("user", "shorter: {text}")]) | _model(
        base_url, openai_http) | StrOutputParser()
    chain = first | RunnableLambda(lambda text: {"text": text}) | second
    answer = await chain.ainvoke({"product": "kettles"}, config={"callbacks": [tracer]})
    assert answer == "echo: shorter: echo: A name for kettles"
    (root,) = tracer.root_run_ids
    ids = await tracer.request_ids(root, timeout=5)
    assert len(ids) == 2
    assert await tracer.drain(timeout=5)
    groups = backend.rows("SELECT id, group_id FROM requests ORDER BY id")
    assert [g["id"] for g in groups] == ids
    assert groups[0]["group_id"] is not None
    assert groups[0]["group_id"] == groups[1]["group_id"] == tracer.group_ids[root]


async def test_model_error_logs_error_and_chain_raises(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], delivery: LogDelivery,
    openai_http: httpx.AsyncClient,
) -> None:
    _, base_url = fake_openai
    tracer = _tracer(delivery)
    chain = _prompt() | _model(base_url, openai_http, "fail-500", max_retries=0)
    with pytest.raises(Exception, match="fake failure 500"):
        await chain.ainvoke({"product": "x"}, config={"callbacks": [tracer]})
    (request_id,) = await tracer.request_ids(tracer.root_run_ids[0], timeout=5)
    assert request_id is not None
    row = backend.request(request_id)
    assert row["status"] == "ERROR"
    assert row["error_type"] == "PROVIDER_ERROR"
    assert "fake failure 500" in row["error_message"]
    assert row["model"] == "fail-500"
    assert row["output"]["messages"] == []


async def test_completion_llm_logs_a_completion_blueprint(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], delivery: LogDelivery,
    openai_http: httpx.AsyncClient,
) -> None:
    _, base_url = fake_openai
    tracer = _tracer(delivery)
    llm = OpenAI(base_url=base_url, api_key="x", model="gpt-3.5-turbo-instruct", max_tokens=20,
                 http_async_client=openai_http)
    assert await llm.ainvoke("Say hi", config={"callbacks": [tracer]}) == "echo: Say hi"
    (request_id,) = await tracer.request_ids(tracer.root_run_ids[0], timeout=5)
    assert request_id is not None
    row = backend.request(request_id)
    assert row["input"]["type"] == "completion"
    assert row["input"]["content"] == [{"type": "text", "text": "Say hi"}]
    assert row["output"]["content"] == [{"type": "text", "text": "echo: Say hi"}]
    assert (row["input_tokens"], row["output_tokens"]) == (2, 3)
    assert row["parameters"]["max_tokens"] == 20
    assert row["model"] == "gpt-3.5-turbo-instruct"
