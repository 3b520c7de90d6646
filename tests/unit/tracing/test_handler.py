"""PromptLayerTracer with LangChain's fake models and a recording stand-in for delivery."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda

from promptserve.tracing import PromptLayerTracer, PromptRef
from tests.utils.fake_delivery import FakeDelivery

PROMPT = PromptRef(name="example", version=3, template_id=12,
                   input_variable_names=("product", "history"))


def _chain(*replies: str) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "be brief"), MessagesPlaceholder("history", optional=True),
         ("user", "about {product}")]
    )
    return prompt | FakeListChatModel(responses=list(replies) or ["ok"]) | StrOutputParser()


def _tracer(delivery: FakeDelivery, **kwargs: Any) -> PromptLayerTracer:
    options: dict[str, Any] = {"tags": ["route:/example", "endpoint:invoke"], "prompt": PROMPT,
                               "pl_tags": ["extra"], "metadata": {"langserve_endpoint": "invoke"}}
    return PromptLayerTracer(delivery, **{**options, **kwargs})  # type: ignore[arg-type]


async def test_one_chat_call_becomes_one_complete_log() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    assert await _chain("toast!").ainvoke({"product": "toasters"},
                                         config={"callbacks": [tracer]}) == "toast!"
    (body,) = delivery.bodies
    (root,) = tracer.root_run_ids
    assert body["status"] == "SUCCESS"
    assert body["tags"] == ["route:/example", "endpoint:invoke", "extra"]
    assert body["prompt_name"] == "example"
    assert body["prompt_version_number"] == 3
    assert body["prompt_id"] == 12
    assert body["prompt_input_variables"] == {"product": "toasters"}
    assert body["function_name"] == "langchain.FakeListChatModel"
    assert body["input"]["messages"][-1]["content"] == [{"type": "text", "text": "about toasters"}]
    assert body["output"]["messages"][0]["content"] == [{"type": "text", "text": "toast!"}]
    assert body["metadata"]["langserve_endpoint"] == "invoke"
    assert body["metadata"]["_langchain_root_run_id"] == str(root)
    assert body["metadata"]["_langchain_parent_run_id"] == str(root)
    assert delivery.keys == [body["metadata"]["_langchain_run_id"]]
    # ISO-8601 UTC text, as the hosted LogRequest schema asks (microseconds always: text
    # order is time order).
    assert body["request_start_time"].endswith("Z")
    assert body["request_start_time"] <= body["request_end_time"]
    assert await tracer.request_ids(root, timeout=1) == [1]
    assert len(tracer._tree) == 0  # the run tree is dropped when the root ends
    assert tracer.group_ids == {}


async def test_streamed_root_still_finds_the_input_variables() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    history = [HumanMessage("hi"), AIMessage("hello")]
    chunks = [c async for c in _chain("a b").astream(
        {"product": "kettles", "history": history}, config={"callbacks": [tracer]})]
    assert "".join(chunks) == "a b"
    (body,) = delivery.bodies
    assert body["prompt_input_variables"] == {"product": "kettles",
                                              "history": "Human: hi\nAI: hello"}


async def test_two_calls_are_grouped_after_the_root_ends() -> None:
    delivery = FakeDelivery()
    ids: list[int] = []
    tracer = _tracer(delivery, pl_id_callback=ids.append)
    chain = _chain("first") | RunnableLambda(lambda text: {"product": text}) | _chain("second")
    assert await chain.ainvoke({"product": "x"}, config={"callbacks": [tracer]}) == "second"
    assert await tracer.drain(timeout=1)
    (root,) = tracer.root_run_ids
    assert await tracer.request_ids(root, timeout=1) == [1, 2]
    assert delivery.tracked == [(1, 99), (2, 99)]
    assert tracer.group_ids == {root: 99}
    assert sorted(ids) == [1, 2]


async def test_an_opened_root_gets_its_calls_and_groups_them_when_closed() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    root = uuid4()
    handler = tracer.open_root(str(root), {"product": "toasters"})
    # The first call's parent is a sequence inside a parallel step, which the tracer never
    # sees: only the opened root ties it to the run.
    chain = ({"text": _chain("first")} | RunnableLambda(lambda d: {"product": d["text"]})
             | _chain("second"))
    config: Any = {"callbacks": [handler], "run_id": root}
    assert await chain.ainvoke({"product": "toasters"}, config=config) == "second"
    assert tracer.root_run_ids == [root]
    assert [b["metadata"]["_langchain_root_run_id"] for b in delivery.bodies] == [str(root)] * 2
    # The input variables come from the input the root was opened with.
    assert [b["prompt_input_variables"] for b in delivery.bodies] == [{"product": "toasters"}] * 2
    assert await tracer.request_ids(root, timeout=1) == [1, 2]
    # Until close_root the root stays open (only it: no chain run was followed) and ungrouped.
    assert await tracer.drain(timeout=1)
    assert (len(tracer._tree), delivery.tracked) == (1, [])
    tracer.close_root(root)
    assert await tracer.drain(timeout=1)
    assert delivery.tracked == [(1, 99), (2, 99)]
    assert tracer.group_ids == {root: 99}
    assert len(tracer._tree) == 0


async def test_an_opened_root_that_is_itself_the_model() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery, prompt=None)
    root = uuid4()
    handler = tracer.open_root(root, "q?")
    config: Any = {"callbacks": [handler], "run_id": root}
    assert await FakeListLLM(responses=["yes"]).ainvoke("q?", config=config) == "yes"
    tracer.close_root(root)
    (body,) = delivery.bodies
    assert body["metadata"]["_langchain_run_id"] == str(root)
    assert "_langchain_parent_run_id" not in body["metadata"]
    assert await tracer.request_ids(root, timeout=1) == [1]
    assert len(tracer._tree) == 0


async def test_completion_llm_and_error_status() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery, prompt=None)
    assert await FakeListLLM(responses=["yes"]).ainvoke("q?", config={"callbacks": [tracer]})
    body = delivery.bodies[0]
    assert body["input"]["type"] == "completion"
    assert body["input"]["content"] == [{"type": "text", "text": "q?"}]
    assert body["output"]["content"] == [{"type": "text", "text": "yes"}]
    assert body["prompt_name"] is None
    assert body["prompt_input_variables"] == {}
    assert "_langchain_parent_run_id" not in body["metadata"]  # the LLM is the root here

    failing = _chain() | RunnableLambda(lambda _: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        await failing.ainvoke({"product": "p"}, config={"callbacks": [tracer]})
    assert len(tracer._tree) == 0


async def test_llm_error_logs_error_status() -> None:
    class Boom(FakeListChatModel):
        async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("took too long")

    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    chain = ChatPromptTemplate.from_messages([("user", "{product}")]) | Boom(responses=["x"])
    with pytest.raises(TimeoutError):
        await chain.ainvoke({"product": "p"}, config={"callbacks": [tracer]})
    (body,) = delivery.bodies
    assert body["status"] == "ERROR"
    assert body["error_type"] == "PROVIDER_TIMEOUT"
    assert body["error_message"] == "TimeoutError: took too long"
    assert body["output"] == {"type": "chat", "messages": [], "input_variables": []}


async def test_a_broken_delivery_never_fails_the_chain() -> None:
    tracer = _tracer(FakeDelivery(broken=True))
    assert await _chain("fine").ainvoke({"product": "x"}, config={"callbacks": [tracer]}) == "fine"
    assert await tracer.request_ids(tracer.root_run_ids[0], timeout=0.1) == []


async def test_undelivered_ids_are_none_after_the_timeout() -> None:
    tracer = _tracer(FakeDelivery(hold=True))
    await _chain().ainvoke({"product": "x"}, config={"callbacks": [tracer]})
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await tracer.request_ids(tracer.root_run_ids[0], timeout=0.1) == [None]
    assert loop.time() - started < 0.5
    assert await tracer.request_ids(UUID(int=0), timeout=1) == []


async def test_concurrent_roots_on_one_tracer() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    chain = _chain(*["r"] * 50)
    await asyncio.gather(*(chain.ainvoke({"product": str(i)}, config={"callbacks": [tracer]})
                           for i in range(20)))
    assert len(tracer.root_run_ids) == 20
    ids = [await tracer.request_ids(r, timeout=1) for r in tracer.root_run_ids]
    assert sorted(i for (i,) in ids) == list(range(1, 21))
    assert sorted(b["prompt_input_variables"]["product"] for b in delivery.bodies) == sorted(
        str(i) for i in range(20))
    assert len(tracer._tree) == 0


async def test_sync_invoke_in_a_worker_thread_delivers_on_the_owner_loop() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(
        None, lambda: _chain("sync").invoke({"product": "x"}, config={"callbacks": [tracer]}))
    assert result == "sync"
    (root,) = tracer.root_run_ids
    assert await tracer.request_ids(root, timeout=1) == [1]


# LangServe's /stream_log still uses astream_log, deprecated in langchain-core 1.x.
@pytest.mark.filterwarnings("ignore:astream_log is deprecated")
@pytest.mark.parametrize("api", ["astream_events", "astream_log"])
async def test_langserve_stream_apis_are_traced(api: str) -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    chain = _chain("a b c")
    config: Any = {"callbacks": [tracer]}
    if api == "astream_events":
        events = [e async for e in chain.astream_events({"product": "irons"}, config=config,
                                                         version="v2")]
        assert any(e["event"] == "on_chat_model_stream" for e in events)
    else:
        patches = [p async for p in chain.astream_log({"product": "irons"}, config=config)]
        assert patches
    (body,) = delivery.bodies
    assert body["prompt_input_variables"] == {"product": "irons"}
    assert body["output"]["messages"][0]["content"] == [{"type": "text", "text": "a b c"}]
    assert len(tracer._tree) == 0


async def test_a_string_root_run_id_as_langserve_passes_it() -> None:
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    run_id = "430b9969-02c9-41cb-b1c4-3d98707b9113"
    await _chain().ainvoke({"product": "x"}, config={"callbacks": [tracer],
                                                     "run_id": run_id})  # type: ignore[typeddict-item]
    assert tracer.root_run_ids == [UUID(run_id)]
    assert await tracer.request_ids(run_id, timeout=1) == [1]
    assert await tracer.request_ids(UUID(run_id), timeout=1) == [1]
    assert delivery.bodies[0]["metadata"]["_langchain_root_run_id"] == run_id


@pytest.mark.filterwarnings("ignore:astream_log is deprecated")
@pytest.mark.parametrize("api", ["astream_events", "astream_log"])
async def test_stream_apis_still_see_a_completion_llm_start_beside_the_inline_tracer(
    api: str,
) -> None:
    # LangChain's own stream handlers are not inline; see promptserve/tracing/_llm_start_fix.py.
    delivery = FakeDelivery()
    tracer = _tracer(delivery)
    config: Any = {"callbacks": [tracer]}
    llm = FakeListLLM(responses=["yes"], name="oracle")
    if api == "astream_events":
        events = [e async for e in llm.astream_events("q?", config=config, version="v2")]
        assert [e["event"] for e in events] == ["on_llm_start", "on_llm_end"]
        assert events[0]["data"]["input"] == "q?"
    else:
        patches = [p async for p in llm.astream_log("q?", config=config)]
        final = patches[0]
        for patch in patches[1:]:
            final += patch
        assert final.state["logs"] == {}  # the root run itself is the LLM
        assert final.state["name"] == "oracle"
        assert final.state["final_output"] is not None
    assert [body["status"] for body in delivery.bodies] == ["SUCCESS"]
