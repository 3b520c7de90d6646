"""LiveChain: the tracer in `configurable` reaches the chain's callbacks on every path."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langserve.callbacks import AsyncEventAggregatorCallback

from promptserve.server._traced_runnable import TRACER_CONFIG_KEY, LiveChain
from promptserve.tracing import PromptLayerTracer, PromptRef
from tests.utils.fake_delivery import FakeDelivery


class Recorder(BaseCallbackHandler):
    """Records the root runs it sees (a chain start without a parent)."""

    def __init__(self) -> None:
        self.roots: list[UUID] = []

    def on_chain_start(
        self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
        parent_run_id: UUID | None = None, **kwargs: Any,
    ) -> None:
        if parent_run_id is None:
            self.roots.append(run_id)


def _config(tracer: Any, **extra: Any) -> dict[str, Any]:
    return {"configurable": {TRACER_CONFIG_KEY: tracer}, **extra}


def _chain() -> LiveChain:
    return LiveChain(bound=RunnableLambda(lambda x: x + 1))


async def test_each_entry_point_runs_with_the_configured_tracer() -> None:
    chain = _chain()
    invoked, streamed, logged, evented = Recorder(), Recorder(), Recorder(), Recorder()
    assert await chain.ainvoke(1, _config(invoked)) == 2
    assert [c async for c in chain.astream(2, _config(streamed))] == [3]
    assert [p async for p in chain.astream_log(3, _config(logged))]
    assert [e async for e in chain.astream_events(4, _config(evented), version="v2")]
    assert chain.invoke(5, _config(invoked)) == 6
    runs = [len(r.roots) for r in (invoked, streamed, logged, evented)]
    assert runs == [2, 1, 1, 1]


async def test_batch_gives_each_input_its_own_configs_tracer() -> None:
    first, second = Recorder(), Recorder()
    assert await _chain().abatch([1, 2], [_config(first), _config(second)]) == [2, 3]
    assert len(first.roots) == len(second.roots) == 1
    assert first.roots != second.roots


async def test_callbacks_already_in_the_config_are_kept() -> None:
    ours, theirs = Recorder(), Recorder()
    assert await _chain().ainvoke(1, _config(ours, callbacks=[theirs])) == 2
    assert len(ours.roots) == 1 and ours.roots == theirs.roots


async def test_a_value_that_is_not_a_handler_is_ignored() -> None:
    # A client's `configurable` could only carry JSON, such as a string.
    assert await _chain().ainvoke(1, _config("not a handler")) == 2
    assert await _chain().ainvoke(1, {"configurable": {}}) == 2
    assert await _chain().ainvoke(1) == 2


async def test_swap_serves_the_new_chain_from_the_next_run() -> None:
    chain, tracer = _chain(), Recorder()
    chain.swap(RunnableLambda(lambda x: x * 10))
    assert await chain.ainvoke(2, _config(tracer)) == 20
    assert len(tracer.roots) == 1


async def test_a_bound_config_is_merged_before_the_tracer_is_added() -> None:
    tracer = Recorder()
    tagged = _chain().with_config(tags=["kept"])
    seen: list[list[str]] = []

    class Tags(BaseCallbackHandler):
        def on_chain_start(self, serialized: Any, inputs: Any, *, tags: list[str] | None = None,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
            if parent_run_id is None:
                seen.append(list(tags or []))

    assert await tagged.ainvoke(1, _config(tracer, callbacks=[Tags()])) == 2
    assert len(tracer.roots) == 1 and seen == [["kept"]]


async def test_every_served_entry_point_logs_each_run_under_its_run_id() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=[],  # type: ignore[arg-type]
                               prompt=PromptRef("example", 1, 7, ("product",)))
    prompt = ChatPromptTemplate.from_messages([("user", "about {product}")])
    chain = LiveChain(bound=prompt | FakeListChatModel(responses=["ok"] * 6) | StrOutputParser())
    run_ids = [uuid4() for _ in range(6)]

    def config(run_id: UUID) -> Any:
        return {**_config(tracer), "run_id": str(run_id)}  # LangServe passes a string

    assert await chain.ainvoke({"product": "a"}, config(run_ids[0])) == "ok"
    assert [c async for c in chain.astream({"product": "b"}, config(run_ids[1]))]
    assert [p async for p in chain.astream_log({"product": "c"}, config(run_ids[2]))]
    assert [e async for e in chain.astream_events({"product": "d"}, config(run_ids[3]),
                                                  version="v2")]
    assert await chain.abatch([{"product": "e"}, {"product": "f"}],
                              [config(run_ids[4]), config(run_ids[5])]) == ["ok", "ok"]
    assert tracer.root_run_ids == run_ids
    logged = sorted((b["metadata"]["_langchain_root_run_id"],
                     b["prompt_input_variables"]["product"]) for b in delivery.bodies)
    assert logged == sorted(zip(map(str, run_ids), "abcdef", strict=True))
    assert len(tracer._tree) == 0  # every root was closed


async def test_langserves_unread_event_aggregator_is_left_out_of_every_served_run() -> None:
    seen: list[list[type]] = []

    def handlers(x: int, config: RunnableConfig) -> int:
        seen.append([type(h) for h in config["callbacks"].handlers])  # type: ignore[union-attr]
        return x + 1

    chain = LiveChain(bound=RunnableLambda(handlers))
    tracer = PromptLayerTracer(FakeDelivery(), tags=[])  # type: ignore[arg-type]

    def config() -> Any:  # as LangServe's invoke, batch and stream pass it
        return _config(tracer, callbacks=[AsyncEventAggregatorCallback(), Recorder()])

    langserves = config()
    assert await chain.ainvoke(1, langserves) == 2
    assert [c async for c in chain.astream(1, config())] == [2]
    assert await chain.abatch([1, 2], [config(), config()]) == [2, 3]
    assert len(seen) == 4
    for types in seen:
        assert AsyncEventAggregatorCallback not in types and Recorder in types
    assert len(langserves["callbacks"]) == 2  # LangServe's own list is left as it was
