"""PromptLayerCallbackHandler logs exactly what the served tracer logs for the same calls,
through its lingering delivery (a recording stand-in for LogDelivery underneath)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from promptserve.integration import BackgroundDelivery, PromptLayerCallbackHandler
from promptserve.integration._linger import LingeringDelivery
from promptserve.tracing import LogDelivery, PromptLayerTracer
from tests.utils.fake_delivery import FakeDelivery

TAGS = ["script", "chatopenai"]


class _Recording(LingeringDelivery):
    """Keeps every future it hands out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.futures: list[asyncio.Future[int | None]] = []

    def submit(self, body: Any, *, idempotency_key: str) -> asyncio.Future[int | None]:
        future = super().submit(body, idempotency_key=idempotency_key)
        self.futures.append(future)
        return future


class _Background:
    """What the handler uses of a BackgroundDelivery, on the test's own loop."""

    def __init__(self, delivery: FakeDelivery, linger: float = 0.01) -> None:
        self.loop = asyncio.get_running_loop()
        self.logs = _Recording(cast(LogDelivery, delivery), self.loop, linger=linger)

    def call_back(self, callback: Callable[[int], Any], request_id: int) -> None:
        callback(request_id)


class _Boom(FakeListChatModel):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("took too long")

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("took too long")


def _chat() -> Runnable[Any, Any]:
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")])
    return prompt | FakeListChatModel(responses=["one", "two"])


def _twice() -> Runnable[Any, Any]:
    return _chat() | (lambda m: {"q": m.content}) | _chat()


CASES: dict[str, tuple[Callable[[], Runnable[Any, Any]], Any]] = {
    "chat": (_chat, {"q": "hello"}),
    "two calls, grouped": (_twice, {"q": "hello"}),
    "completion": (lambda: FakeListLLM(responses=["yes"]), "q?"),
    "model error": (lambda: ChatPromptTemplate.from_messages([("user", "{q}")])
                    | _Boom(responses=["x"]), {"q": "p"}),
    "chain error after the call": (lambda: _chat() | RunnableLambda(lambda _: 1 / 0),
                                   {"q": "p"}),
}


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A body without what differs between any two runs (run ids, times)."""
    metadata = {k: v for k, v in body["metadata"].items() if not k.startswith("_langchain_")}
    return {**body, "metadata": metadata, "request_start_time": None,
            "request_end_time": None}


async def _run(chain: Runnable[Any, Any], value: Any, handler: Any, *, sync: bool) -> None:
    config: Any = {"callbacks": [handler]}
    try:
        if sync:  # a script's plain call, on a thread of its own (this loop keeps serving)
            await asyncio.to_thread(chain.invoke, value, config)
        else:
            await chain.ainvoke(value, config=config)
    except (TimeoutError, ZeroDivisionError):
        pass


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("case", list(CASES))
async def test_the_handler_logs_what_the_served_tracer_logs(case: str, sync: bool) -> None:
    make, value = CASES[case]
    served = FakeDelivery()
    tracer = PromptLayerTracer(served, tags=(), pl_tags=TAGS)  # type: ignore[arg-type]
    await _run(make(), value, tracer, sync=False)
    await tracer.drain(2)

    script = FakeDelivery()
    ids: list[int] = []
    background = _Background(script)
    handler = PromptLayerCallbackHandler(pl_tags=TAGS, pl_id_callback=ids.append,
                                         delivery=cast(BackgroundDelivery, background))
    await _run(make(), value, handler, sync=sync)
    await asyncio.wait_for(asyncio.gather(*background.logs.futures), 2)
    await handler.drain(2)
    await asyncio.sleep(0)  # the id callbacks' turn

    assert served.bodies, "the case logs something"
    assert [_comparable(b) for b in script.bodies] == [_comparable(b) for b in served.bodies]
    assert script.tracked == served.tracked  # the same groups
    assert bool(served.tracked) == (case == "two calls, grouped")
    assert sorted(ids) == list(range(1, len(script.bodies) + 1))  # each id once
    assert handler._requests == {} and len(handler._tree) == 0  # nothing kept per run


async def test_streamed_chat_is_logged_once_with_its_text() -> None:
    script = FakeDelivery()
    handler = PromptLayerCallbackHandler(
        delivery=cast(BackgroundDelivery, _Background(script, linger=0.01)))
    model = FakeListChatModel(responses=["a b c"])
    chunks = [c async for c in model.astream("hi", config={"callbacks": [handler]})]
    assert "".join(str(c.content) for c in chunks) == "a b c"
    background = cast(_Background, handler.background)
    background.logs.hand_over()
    (body,) = script.bodies
    assert body["output"]["messages"][0]["content"] == [{"type": "text", "text": "a b c"}]
