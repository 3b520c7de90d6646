"""LogDelivery over real HTTP: the SDK's body, flaky and unreachable PromptLayer."""

from __future__ import annotations

import asyncio
import inspect
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from promptlayer import AsyncPromptLayer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from promptserve.tracing import LogDelivery, PromptLayerTracer
from tests.integration.tracing.conftest import API_KEY, Backend
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, serve_in_thread


class FlakyProxy:
    """Answers the first `failures` /log-request calls with `status`, then forwards."""

    def __init__(self, backend_url: str, *, status: int, failures: int) -> None:
        self.backend_url, self.status, self.failures = backend_url, status, failures
        self.seen: list[str | None] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append(request.headers.get("idempotency-key"))
        if len(self.seen) <= self.failures:
            return JSONResponse({"message": "flaky"}, status_code=self.status)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as client:
            upstream = await client.post(f"{self.backend_url}/{request.path_params['path']}",
                                         content=body, headers=headers)
        return Response(upstream.content, status_code=upstream.status_code,
                        media_type="application/json")


def _chain(base_url: str, http: httpx.AsyncClient) -> Any:
    prompt = ChatPromptTemplate.from_messages([("user", "hello {who}")])
    model = ChatOpenAI(base_url=base_url, api_key="x", model="gpt-4o-mini",
                       http_async_client=http)
    return prompt | model | StrOutputParser()


async def test_body_has_every_key_the_sdk_sends() -> None:
    captured: list[dict[str, Any]] = []

    async def capture(request: Request) -> Response:
        captured.append(await request.json())
        return JSONResponse({"id": len(captured)}, status_code=201)

    app = Starlette(routes=[Route("/log-request", capture, methods=["POST"])])
    fake = FakeOpenAI()
    with serve_in_thread(app) as url, serve_in_thread(fake.app) as openai_url:
        sdk = AsyncPromptLayer(api_key=API_KEY, base_url=url)
        chat = {"type": "chat", "messages": [], "input_variables": []}
        await sdk.log_request(provider="openai", model="m", input=chat, output=chat,
                              request_start_time=time.time(), request_end_time=time.time())
        delivery = LogDelivery(base_url=url, api_key=API_KEY)
        tracer = PromptLayerTracer(delivery, tags=["t"])
        async with httpx.AsyncClient() as http:
            await _chain(f"{openai_url}/v1", http).ainvoke({"who": "x"},
                                                           config={"callbacks": [tracer]})
        assert await tracer.request_ids(tracer.root_run_ids[0], timeout=5) == [2]
        await delivery.aclose()
    sdk_body, ours = captured
    # The SDK's keys in its order, then api_type (the hosted LogRequest has it; SDK 1.5.16
    # does not send it); times as the schema's ISO text where the SDK sends epoch floats.
    assert [key for key in ours if key != "api_type"] == list(sdk_body)
    assert set(inspect.signature(AsyncPromptLayer.log_request).parameters) - {"self"} == (
        set(ours) - {"api_type"})
    assert ours["api_type"] == "chat-completions"
    assert isinstance(sdk_body["request_start_time"], float)
    assert datetime.fromisoformat(ours["request_start_time"]).tzinfo is not None


async def test_request_ids_are_the_stored_ids(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], delivery: LogDelivery,
    openai_http: httpx.AsyncClient,
) -> None:
    _, base_url = fake_openai
    seen: list[int] = []
    tracer = PromptLayerTracer(delivery, tags=["t"], pl_id_callback=seen.append)
    await asyncio.gather(*(_chain(base_url, openai_http).ainvoke(
        {"who": str(i)}, config={"callbacks": [tracer]}) for i in range(5)))
    ids = [await tracer.request_ids(root, timeout=5) for root in tracer.root_run_ids]
    for root, (request_id,) in zip(tracer.root_run_ids, ids, strict=True):
        # The SDK's own tracking call finds the request by that id.
        sdk = AsyncPromptLayer(api_key=API_KEY, base_url=backend.url)
        assert await sdk.track.score(request_id=request_id, score=90) is True
        row = backend.request(request_id)
        assert row["metadata"]["_langchain_root_run_id"] == str(root)
    assert sorted(seen) == sorted(i for (i,) in ids)


async def test_retries_a_503_then_delivers_once(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], openai_http: httpx.AsyncClient
) -> None:
    proxy = FlakyProxy(backend.url, status=503, failures=2)
    with serve_in_thread(proxy.app) as url:
        delivery = LogDelivery(base_url=url, api_key=API_KEY, backoff_initial=0.05)
        tracer = PromptLayerTracer(delivery, tags=["t"])
        await _chain(fake_openai[1], openai_http).ainvoke({"who": "x"},
                                                          config={"callbacks": [tracer]})
        (request_id,) = await tracer.request_ids(tracer.root_run_ids[0], timeout=5)
        await delivery.aclose()
    assert request_id is not None
    assert len(proxy.seen) == 3 and len(set(proxy.seen)) == 1
    assert len(backend.rows("SELECT id FROM requests")) == 1


async def test_does_not_retry_a_400(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], openai_http: httpx.AsyncClient
) -> None:
    proxy = FlakyProxy(backend.url, status=400, failures=1)
    with serve_in_thread(proxy.app) as url:
        delivery = LogDelivery(base_url=url, api_key=API_KEY, backoff_initial=0.05)
        tracer = PromptLayerTracer(delivery, tags=["t"])
        await _chain(fake_openai[1], openai_http).ainvoke({"who": "x"},
                                                          config={"callbacks": [tracer]})
        assert await tracer.request_ids(tracer.root_run_ids[0], timeout=5) == [None]
        await delivery.aclose()
    assert len(proxy.seen) == 1


@pytest.mark.timeout(30)
async def test_backend_down_gives_none_in_time_and_the_chain_succeeds(
    fake_openai: tuple[FakeOpenAI, str], openai_http: httpx.AsyncClient
) -> None:
    delivery = LogDelivery(base_url=f"http://127.0.0.1:{free_port()}", api_key=API_KEY,
                           total_budget=60, backoff_initial=0.05)
    tracer = PromptLayerTracer(delivery, tags=["t"])
    answer = await _chain(fake_openai[1], openai_http).ainvoke({"who": "x"},
                                                               config={"callbacks": [tracer]})
    assert answer == "echo: hello x"
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await tracer.request_ids(tracer.root_run_ids[0], timeout=0.3) == [None]
    assert loop.time() - started < 1.0
    await delivery.aclose(timeout=0.2)
