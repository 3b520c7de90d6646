"""Every log the tracer sends fits the hosted PromptLayer's LogRequest schema; the embedded
backend stores a log that does not fit without the offending part, and says so.

The tracer posts through a recording proxy to the real embedded backend; every body it
posted (one by one or in a batch) is checked with python-jsonschema against the copied
schema, times included (date-time), and every stored row must carry no backend cut.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import jsonschema
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.backend.api.requests import STORED_WITHOUT_KEY
from promptserve import json_codec
from promptserve.tracing import LogDelivery, PromptLayerTracer, PromptRef
from promptserve.tracing import _hosted_schema as hosted
from promptserve.tracing._blueprints import DROPPED_KEY
from tests.integration.tracing.conftest import API_KEY, Backend
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    # RFC 3339: a date, "T", a time and an offset (python-jsonschema needs an extra package).
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value and parsed.tzinfo is not None


HOSTED = jsonschema.Draft202012Validator(hosted.log_request_schema(), format_checker=_FORMATS)


def hosted_problems(body: dict[str, Any]) -> list[str]:
    """Why the hosted service would refuse `body` (python-jsonschema, no leniency)."""
    return [f"{'.'.join(map(str, e.absolute_path)) or 'body'}: {e.message[:200]}"
            for e in HOSTED.iter_errors(body)]


class RecordingProxy:
    """Forwards every POST to the backend and keeps each log body it carried."""

    def __init__(self, backend_url: str) -> None:
        self.backend_url = backend_url
        self.bodies: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        path = request.path_params["path"]
        if path == "log-request":
            self.bodies.append(json_codec.loads(raw))
        elif path == "log-request/batch":
            self.bodies += [entry["body"] for entry in json_codec.loads(raw)["requests"]]
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as client:
            upstream = await client.post(f"{self.backend_url}/{path}", content=raw,
                                         headers=headers)
        return Response(upstream.content, status_code=upstream.status_code,
                        media_type="application/json")


class Traced:
    """A tracer whose logs go through the recording proxy to the backend."""

    def __init__(self, backend: Backend, proxy: RecordingProxy, delivery: LogDelivery,
                 base_url: str, http: httpx.AsyncClient) -> None:
        self.backend, self.proxy, self.base_url, self.http = backend, proxy, base_url, http
        self.tracer = PromptLayerTracer(delivery, tags=["route:/x", "endpoint:invoke"],
                                        prompt=PromptRef(name="p", version=1),
                                        pl_tags=["pl", "long:" + "x" * 600],
                                        metadata={"langserve_endpoint": "invoke"})
        self.config: Any = {"callbacks": [self.tracer]}

    def chat(self, model: str = "gpt-4o-mini", **kwargs: Any) -> ChatOpenAI:
        return ChatOpenAI(base_url=self.base_url, api_key="x", model=model, stream_usage=True,
                          http_async_client=self.http, max_retries=0, **kwargs)

    async def rows(self) -> list[dict[str, Any]]:
        """The stored requests of every root so far, after each landed."""
        ids = [i for root in self.tracer.root_run_ids
               for i in await self.tracer.request_ids(root, timeout=5)]
        assert None not in ids, "a log was not stored"
        return [self.backend.request(i) for i in ids]


@pytest.fixture
async def traced(
    backend: Backend, fake_openai: tuple[FakeOpenAI, str], openai_http: httpx.AsyncClient
) -> AsyncIterator[Traced]:
    proxy = RecordingProxy(backend.url)
    with serve_in_thread(proxy.app) as url:
        delivery = LogDelivery(base_url=url, api_key=API_KEY, total_budget=5.0,
                               backoff_initial=0.05)
        try:
            yield Traced(backend, proxy, delivery, fake_openai[1], openai_http)
        finally:
            await delivery.aclose()


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class Product(BaseModel):
    """A product name and its price."""

    name: str
    price: float


PROMPT = ChatPromptTemplate.from_messages([("system", "You name products."),
                                           ("user", "A name for {product}")])


async def _chat_invoke(t: Traced) -> None:
    await (PROMPT | t.chat(temperature=0.2) | StrOutputParser()).ainvoke(
        {"product": "kettles"}, config=t.config)


async def _chat_stream(t: Traced) -> None:
    chain = PROMPT | t.chat() | StrOutputParser()
    assert "".join([c async for c in chain.astream({"product": "mugs"}, config=t.config)])


async def _completion(t: Traced) -> None:
    llm = OpenAI(base_url=t.base_url, api_key="x", model="gpt-3.5-turbo-instruct",
                 http_async_client=t.http, max_retries=0)
    await llm.ainvoke("Say hi", config=t.config)
    assert "".join([c async for c in llm.astream("Say bye", config=t.config)])


async def _tool_calls(t: Traced) -> None:
    model = t.chat().bind_tools([multiply], tool_choice="multiply")
    question = HumanMessage("what is 6 times 7")
    call = await model.ainvoke([question], config=t.config)
    assert isinstance(call, AIMessage) and call.tool_calls
    result = ToolMessage("42", tool_call_id=call.tool_calls[0]["id"])
    await t.chat().bind_tools([multiply]).ainvoke([question, call, result], config=t.config)
    streamed = [c async for c in model.astream([question], config=t.config)]
    assert streamed


async def _json_output(t: Traced) -> None:
    structured = t.chat().with_structured_output(Product, method="json_schema")
    assert isinstance(await structured.ainvoke("a name for 3.5 toasters", config=t.config),
                      Product)
    json_mode = t.chat().with_structured_output(None, method="json_mode")
    await json_mode.ainvoke("answer in JSON", config=t.config)


async def _multimodal_input(t: Traced) -> None:
    message = HumanMessage(content=[
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image", "base64": "iVBORw0K", "mime_type": "image/png"},
        {"type": "image", "url": "https://example.com/cat.png"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ])
    await t.chat().ainvoke([message], config=t.config)


async def _error(t: Traced) -> None:
    with pytest.raises(Exception, match="fake failure 500"):
        await (PROMPT | t.chat("fail-500")).ainvoke({"product": "x"}, config=t.config)
    with contextlib.suppress(Exception):
        async for _ in (PROMPT | t.chat("fail-429")).astream({"product": "x"}, config=t.config):
            pass


SCENARIOS: dict[str, Callable[[Traced], Awaitable[None]]] = {
    "chat": _chat_invoke, "chat stream": _chat_stream, "completion and its stream": _completion,
    "tool calls": _tool_calls, "JSON output": _json_output, "images and audio": _multimodal_input,
    "errors": _error,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_posted_log_fits_the_hosted_schema(traced: Traced, scenario: str) -> None:
    await SCENARIOS[scenario](traced)
    rows = await traced.rows()
    assert traced.proxy.bodies and len(traced.proxy.bodies) == len(rows)
    for body in traced.proxy.bodies:
        assert hosted_problems(body) == [], body
        assert body["api_type"] == "chat-completions" and body["provider"] == "openai"
        assert [len(tag) for tag in body["tags"]][-1] == 512
        assert body["metadata"][DROPPED_KEY] == "tags[3] cut to 512 characters"
    for row in rows:
        assert STORED_WITHOUT_KEY not in row["metadata"], row["metadata"]
        assert row["api_type"] == "chat-completions"


async def test_what_is_mapped_and_what_is_dropped_is_stored_and_noted(traced: Traced) -> None:
    message = HumanMessage(content=[
        {"type": "text", "text": "read this"},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==",
                                  "filename": "a.pdf"}},
        {"type": "file", "file_id": "file-abc", "mime_type": "application/pdf"},
    ])
    await traced.chat().ainvoke([message], config=traced.config)
    (row,) = await traced.rows()
    (body,) = traced.proxy.bodies
    assert hosted_problems(body) == []
    assert row["input"]["messages"][0]["content"] == [
        {"type": "text", "text": "read this"},
        {"type": "media", "media": {"type": "application/pdf",
                                    "url": "data:application/pdf;base64,JVBERg==",
                                    "format": "base64"}},
    ]
    assert row["metadata"][DROPPED_KEY] == (
        "file block by file id file-abc in input.messages[0].content[2]; "
        "tags[3] cut to 512 characters")
    assert STORED_WITHOUT_KEY not in row["metadata"]


async def test_an_answer_that_misses_its_schema_is_logged_as_the_hosted_schema_allows(
    traced: Traced,
) -> None:
    # As a registry prompt asks (its response_format among the model's parameters).
    schema = {"type": "object", "properties": {"name": {"type": "string"}},
              "required": ["name"]}
    response_format = {"type": "json_schema",
                       "json_schema": {"name": "product", "schema": schema}}
    model = traced.chat("badjson-m", model_kwargs={"response_format": response_format})
    await model.ainvoke("a name", config=traced.config)
    (row,) = await traced.rows()
    assert row["status"] == "ERROR" and "does not fit the schema" in row["error_message"]
    assert [hosted_problems(b) for b in traced.proxy.bodies] == [[]]


def _traced_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "openai", "model": "m",
        "input": {"type": "chat", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"}, {"type": "audio", "base64": "UklGRg=="}]}],
            "tools": [{"name": "anthropic_style", "input_schema": {"type": "object"}}]},
        "output": {"type": "chat", "messages": []},
        "request_start_time": "2026-08-01T10:00:00Z", "request_end_time": 1_785_578_401.5,
        "tags": ["ok", "t" * 600], "metadata": {"_langchain_run_id": "run-1", "n": 3},
    }
    return {**body, **changes}


@pytest.mark.unfit_logs
async def test_the_backend_stores_an_unfit_log_without_the_offending_parts(
    backend: Backend, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.backend.api.requests"):
        answer = httpx.post(f"{backend.url}/log-request", json=_traced_body(),
                            headers={"X-API-KEY": API_KEY, "Idempotency-Key": "k-1"})
    assert answer.status_code == 201, answer.text
    row = backend.request(answer.json()["id"])
    assert row["input"] == {"type": "chat", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "tools": []}
    assert row["tags"] == ["ok", "t" * 512]
    note = row["metadata"].pop(STORED_WITHOUT_KEY)
    assert row["metadata"] == {"_langchain_run_id": "run-1"}
    assert note.split("; ")[0] == (
        "input.messages[0].content[1]: type 'audio' is not one the hosted schema accepts")
    assert [part.split(":")[0] for part in note.split("; ")] == [
        "input.messages[0].content[1]", "input.tools[0]", "tags[1]", "metadata.n"]
    (record,) = [r for r in caplog.records if hasattr(r, "hosted_schema_removed")]
    assert "k-1" in record.getMessage() and record.langchain_run_id == "run-1"
    # The session-wide check (tests/conftest.py) saw it; this test is marked to allow it.
    from tests.conftest import _unfit_logs

    assert any("k-1" in line for line in request.config.stash[_unfit_logs].take())


async def test_only_a_log_that_can_never_be_stored_is_rejected(
    backend: Backend, delivery: LogDelivery, caplog: pytest.LogCaptureFixture,
) -> None:
    no_provider = _traced_body(provider=None, input={"type": "chat", "messages": []},
                               tags=[], metadata={})
    with caplog.at_level(logging.WARNING):
        refused = await delivery.submit(no_provider, idempotency_key="never")
        stored = await delivery.submit(
            _traced_body(input={"type": "chat", "messages": []}, tags=[], metadata={}),
            idempotency_key="fine")
    assert refused is None and isinstance(stored, int)
    assert delivery.stats()["rejected_total"] == 1
    # The reason is in the service's log.
    (line,) = [r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING and "never" in r.getMessage()]
    assert "400" in line and "provider" in line
