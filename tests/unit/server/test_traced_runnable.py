"""TracedRunnable: a request's trace in `configurable` opens every run it serves, on every path
(its prompt versions pinned, the run a root of the request's tracer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langserve.callbacks import AsyncEventAggregatorCallback

from promptserve.prompts import PINS_KEY, PromptPins, PromptStore, RegistryPrompt
from promptserve.server import RequestTrace, TracedRunnable
from promptserve.server._trace import TRACE_CONFIG_KEY
from promptserve.tracing import PromptLayerTracer
from tests.unit.prompts.templates import installed, raw_template
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
            # LangServe's string run id reaches the handlers as given.
            self.roots.append(UUID(str(run_id)))


class RecordingTracer:
    """Stands in for PromptLayerTracer: records the roots opened and closed; each root's
    handler is a Recorder."""

    def __init__(self) -> None:
        self.opened: list[tuple[UUID, Any]] = []
        self.closed: list[UUID] = []
        self.handlers: dict[UUID, Recorder] = {}

    def open_root(self, run_id: UUID, inputs: Any) -> BaseCallbackHandler:
        self.opened.append((run_id, inputs))
        handler = self.handlers[run_id] = Recorder()
        return handler

    def close_root(self, run_id: UUID) -> None:
        self.closed.append(run_id)


def trace_of(tracer: Any = None, endpoint: str = "invoke") -> RequestTrace:
    return RequestTrace(endpoint=endpoint, tracer=tracer)


def served(trace: RequestTrace, run_id: UUID | None = None, **extra: Any) -> Any:
    """A run's config as LangServe passes it (the run id as a string)."""
    config: dict[str, Any] = {"configurable": {TRACE_CONFIG_KEY: trace}, **extra}
    if run_id is not None:
        config["run_id"] = str(run_id)
    return config


def _chain() -> TracedRunnable:
    return TracedRunnable(RunnableLambda(lambda x: x + 1))


async def test_each_entry_point_opens_and_closes_one_root_under_its_run_id() -> None:
    chain, tracer = _chain(), RecordingTracer()
    trace = trace_of(tracer)
    ids = [uuid4() for _ in range(5)]
    assert await chain.ainvoke(1, served(trace, ids[0])) == 2
    assert [c async for c in chain.astream(2, served(trace, ids[1]))] == [3]
    assert [p async for p in chain.astream_log(3, served(trace, ids[2]))]
    assert [e async for e in chain.astream_events(4, served(trace, ids[3]), version="v2")]
    assert chain.invoke(5, served(trace, ids[4])) == 6
    assert tracer.opened == list(zip(ids, [1, 2, 3, 4, 5], strict=True))
    assert tracer.closed == ids
    # The root's handler saw that root, under that id, and nothing else.
    assert {run_id: h.roots for run_id, h in tracer.handlers.items()} == {i: [i] for i in ids}
    assert list(trace.runs) == ids
    assert all(isinstance(pins, PromptPins) for pins in trace.runs.values())


async def test_a_run_without_an_id_gets_one() -> None:
    tracer = RecordingTracer()
    assert await _chain().ainvoke(1, served(trace_of(tracer))) == 2
    ((run_id, _),) = tracer.opened
    assert tracer.handlers[run_id].roots == [run_id]


async def test_batch_gives_each_input_its_own_root() -> None:
    tracer = RecordingTracer()
    trace = trace_of(tracer, "batch")
    first, second = uuid4(), uuid4()
    assert await _chain().abatch([1, 2], [served(trace, first), served(trace, second)]) == [2, 3]
    assert tracer.opened == [(first, 1), (second, 2)]
    assert tracer.handlers[first].roots == [first]
    assert tracer.handlers[second].roots == [second]
    assert sorted(tracer.closed) == sorted([first, second])
    assert trace.runs[first] is not trace.runs[second]


async def test_callbacks_already_in_the_config_are_kept() -> None:
    tracer, theirs = RecordingTracer(), Recorder()
    run_id = uuid4()
    assert await _chain().ainvoke(1, served(trace_of(tracer), run_id, callbacks=[theirs])) == 2
    assert theirs.roots == [run_id] == tracer.handlers[run_id].roots


async def test_the_bound_chain_gets_the_pins_and_not_the_trace() -> None:
    seen: list[dict[str, Any]] = []

    def configurable(x: int, config: RunnableConfig) -> int:
        seen.append(dict(config.get("configurable") or {}))
        return x

    chain = TracedRunnable(RunnableLambda(configurable))
    trace = trace_of()  # no tracer yet: the run is still opened (pins)
    run_id = uuid4()
    assert await chain.ainvoke(1, served(trace, run_id, configurable={
        TRACE_CONFIG_KEY: trace, "user_key": "u"})) == 1
    (values,) = seen
    assert TRACE_CONFIG_KEY not in values
    assert values["user_key"] == "u"
    assert values[PINS_KEY] is trace.runs[run_id]


@pytest.mark.parametrize("value", ["not a trace", {"endpoint": "invoke"}, None])
async def test_a_value_that_is_not_a_request_trace_is_ignored(value: Any) -> None:
    # A client's `configurable` could only carry JSON, such as a string.
    seen: list[dict[str, Any]] = []

    def configurable(x: int, config: RunnableConfig) -> int:
        seen.append(dict(config.get("configurable") or {}))
        return x + 1

    chain = TracedRunnable(RunnableLambda(configurable))
    assert await chain.ainvoke(1, {"configurable": {TRACE_CONFIG_KEY: value}}) == 2
    assert await chain.ainvoke(1, {"configurable": {}}) == 2
    assert await chain.ainvoke(1) == 2
    assert all(PINS_KEY not in values for values in seen)
    assert seen[0].get(TRACE_CONFIG_KEY) == value


async def test_a_bound_config_is_merged_before_the_tracer_is_added() -> None:
    tracer = RecordingTracer()
    tagged = _chain().with_config(tags=["kept"])
    seen: list[list[str]] = []

    class Tags(BaseCallbackHandler):
        def on_chain_start(self, serialized: Any, inputs: Any, *, tags: list[str] | None = None,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
            if parent_run_id is None:
                seen.append(list(tags or []))

    assert await tagged.ainvoke(1, served(trace_of(tracer), callbacks=[Tags()])) == 2
    assert len(tracer.opened) == 1 and seen == [["kept"]]


async def test_a_failed_run_is_closed_and_its_error_kept() -> None:
    def boom(x: int) -> int:
        raise ValueError("boom")

    tracer = RecordingTracer()
    trace = trace_of(tracer)
    chain = TracedRunnable(RunnableLambda(boom))
    run_id = uuid4()
    with pytest.raises(ValueError, match="boom"):
        await chain.ainvoke(1, served(trace, run_id))
    with pytest.raises(ValueError, match="boom"):
        [c async for c in chain.astream(1, served(trace, uuid4()))]
    assert tracer.closed[0] == run_id and len(tracer.closed) == 2
    assert isinstance(trace.error, ValueError)
    first = trace.error
    with pytest.raises(ValueError):
        await chain.abatch([1], [served(trace, uuid4())])
    assert trace.error is first  # the first error is the one kept
    assert len(tracer.closed) == 3


async def test_every_served_entry_point_logs_each_run_under_its_run_id() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=["route:/example"])  # type: ignore[arg-type]
    trace = trace_of(tracer)
    prompt = RegistryPrompt("example")
    installed(prompt, raw_template("example", version=7), *["ok"] * 6)
    chain = TracedRunnable(prompt | StrOutputParser(), prompts=[prompt])
    run_ids = [uuid4() for _ in range(6)]

    assert await chain.ainvoke({"product": "a"}, served(trace, run_ids[0])) == "ok"
    assert [c async for c in chain.astream({"product": "b"}, served(trace, run_ids[1]))]
    assert [p async for p in chain.astream_log({"product": "c"}, served(trace, run_ids[2]))]
    assert [e async for e in chain.astream_events({"product": "d"}, served(trace, run_ids[3]),
                                                  version="v2")]
    assert await chain.abatch([{"product": "e"}, {"product": "f"}],
                              [served(trace, run_ids[4]), served(trace, run_ids[5])]) \
        == ["ok", "ok"]
    assert tracer.root_run_ids == run_ids
    logged = sorted((b["metadata"]["_langchain_root_run_id"],
                     b["prompt_input_variables"]["product"]) for b in delivery.bodies)
    assert logged == sorted(zip(map(str, run_ids), "abcdef", strict=True))
    assert {b["prompt_name"] for b in delivery.bodies} == {"example"}
    assert {tuple(b["tags"]) for b in delivery.bodies} == {
        ("route:/example", "prompt:example", "prompt_version:7", "prompt_label:prod")
    }
    assert [trace.prompt_versions(r) for r in run_ids] == [{"example": 7}] * 6
    assert len(tracer._tree) == 0  # every root was closed
    ids = [await tracer.request_ids(r, timeout=1.0) for r in run_ids]
    assert sorted(i or 0 for (i,) in ids) == [1, 2, 3, 4, 5, 6]


async def test_two_prompts_of_one_run_are_logged_each_against_its_own() -> None:
    delivery = FakeDelivery()
    tracer = PromptLayerTracer(delivery, tags=[])  # type: ignore[arg-type]
    trace = trace_of(tracer)
    slogan, critique = RegistryPrompt("slogan"), RegistryPrompt("critique")
    installed(slogan, raw_template("slogan", version=2), "Toast it.")
    installed(critique, raw_template("critique", version=3), "Meh.")
    chain = TracedRunnable(slogan | StrOutputParser() | (lambda s: {"slogan": s})
                           | critique | StrOutputParser(), prompts=[slogan, critique])
    run_id = uuid4()
    assert await chain.ainvoke({"product": "toasters"}, served(trace, run_id)) == "Meh."
    assert [(b["prompt_name"], b["prompt_version_number"], b["prompt_input_variables"],
             b["tags"]) for b in delivery.bodies] == [
        ("slogan", 2, {"product": "toasters"},
         ["prompt:slogan", "prompt_version:2", "prompt_label:prod"]),
        ("critique", 3, {"slogan": "Toast it."},
         ["prompt:critique", "prompt_version:3", "prompt_label:prod"]),
    ]
    assert trace.prompt_versions(run_id) == {"slogan": 2, "critique": 3}
    assert await tracer.drain(1.0)
    assert delivery.tracked == [(1, 99), (2, 99)]


async def test_runs_are_pinned_from_the_store_and_typed_by_it() -> None:
    templates = {"example": raw_template("example")}

    async def fetch(prompt: RegistryPrompt) -> Mapping[str, Any]:
        return templates[prompt.prompt_name]

    def build(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
        return FakeListChatModel(responses=[f"v{templates[name]['version']}"])

    prompt = RegistryPrompt("example")
    store = PromptStore([prompt], fetch=fetch, build_model=build)
    await store.load()
    chain = TracedRunnable(prompt | StrOutputParser(), prompts=[prompt], store=store)
    assert chain.get_input_jsonschema()["required"] == ["product"]
    assert chain.get_output_jsonschema()["type"] == "string"
    assert chain.get_name() == "RunnableSequence"
    trace = trace_of()
    first = uuid4()
    assert await chain.ainvoke({"product": "x"}, served(trace, first)) == "v1"
    assert trace.runs[first].versions == {prompt.selector: store.current_for(prompt)}

    templates["example"] = {**raw_template("example", version=2)}
    templates["example"]["prompt_template"]["messages"][1]["content"][0]["text"] = "{thing}"
    templates["example"]["prompt_template"]["input_variables"] = ["thing"]
    assert await store.refresh_once() == ["example"]
    # A new version's variables type the next request.
    assert chain.get_input_jsonschema()["required"] == ["thing"]
    second = uuid4()
    assert await chain.ainvoke({"thing": "y"}, served(trace, second)) == "v2"
    assert trace.prompt_versions(first) == {"example": 1}
    assert trace.prompt_versions(second) == {"example": 2}


async def test_langserves_unread_event_aggregator_is_left_out_of_every_served_run() -> None:
    seen: list[list[type]] = []

    def handlers(x: int, config: RunnableConfig) -> int:
        seen.append([type(h) for h in config["callbacks"].handlers])  # type: ignore[union-attr]
        return x + 1

    chain = TracedRunnable(RunnableLambda(handlers))
    tracer = PromptLayerTracer(FakeDelivery(), tags=[])  # type: ignore[arg-type]
    trace = trace_of(tracer)

    def config() -> Any:  # as LangServe's invoke, batch and stream pass it
        return served(trace, callbacks=[AsyncEventAggregatorCallback(), Recorder()])

    langserves = config()
    assert await chain.ainvoke(1, langserves) == 2
    assert [c async for c in chain.astream(1, config())] == [2]
    assert await chain.abatch([1, 2], [config(), config()]) == [2, 3]
    assert len(seen) == 4
    for types in seen:
        assert AsyncEventAggregatorCallback not in types and Recorder in types
    assert len(langserves["callbacks"]) == 2  # LangServe's own list is left as it was
    # Left out of unserved runs too: it is only ever LangServe's.
    assert await chain.ainvoke(1, {"callbacks": [AsyncEventAggregatorCallback()]}) == 2
    assert AsyncEventAggregatorCallback not in seen[-1]
