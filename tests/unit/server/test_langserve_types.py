"""A RegistryPrompt chain under stock LangServe and under promptserve's add_routes: the input
schema and 422s come from its version's variables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from langchain_core.output_parsers import StrOutputParser
from langserve import add_routes as langserve_add_routes

from promptserve.prompts import RegistryPrompt
from promptserve.server import REQUEST_ID_HEADER, TracedEndpoint, TracedRunnable
from promptserve.server import add_routes as promptserve_add_routes
from tests.unit.prompts.templates import installed, raw_template
from tests.utils.fake_delivery import FakeDelivery


@pytest.fixture(params=["langserve", "promptserve"])
async def mounted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FastAPI, FakeDelivery]]:
    prompt = RegistryPrompt("example")
    installed(prompt, raw_template("example", version=3), "A slogan.")
    app = FastAPI()
    delivery = FakeDelivery()
    if request.param == "langserve":
        langserve_add_routes(app, prompt | StrOutputParser(), path="/example")
    else:
        served = promptserve_add_routes(app, prompt | StrOutputParser(), path="/example",
                                        delivery=delivery,  # type: ignore[arg-type]
                                        wait_seconds=1.0)
        assert isinstance(served, TracedRunnable) and served.prompts == (prompt,)
    yield app, delivery


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize(
    "payload", [{}, {"product": 3}, {"product": "x", "unknown": "y"}, {"product": None}]
)
async def test_bad_input_is_422(mounted: tuple[FastAPI, FakeDelivery],
                                payload: dict[str, Any]) -> None:
    app, delivery = mounted
    async with await _client(app) as client:
        response = await client.post("/example/invoke", json={"input": payload})
    assert response.status_code == 422, response.text
    assert delivery.bodies == []  # the chain never ran


async def test_input_schema_is_the_prompt_variables(mounted: tuple[FastAPI, FakeDelivery]) -> None:
    app, _ = mounted
    async with await _client(app) as client:
        schema = (await client.get("/example/input_schema")).json()
        output = (await client.get("/example/output_schema")).json()
    assert schema["properties"] == {"product": {"title": "Product", "type": "string"}}
    assert schema["required"] == ["product"]
    assert output["type"] == "string"


async def test_good_input_is_answered(mounted: tuple[FastAPI, FakeDelivery]) -> None:
    app, delivery = mounted
    async with await _client(app) as client:
        response = await client.post("/example/invoke", json={"input": {"product": "toasters"}})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "A slogan."
    if not any(isinstance(getattr(r, "app", None), TracedEndpoint) for r in app.router.routes):
        assert delivery.bodies == []  # stock LangServe: nothing traced
        return
    (body,) = delivery.bodies  # promptserve's: the call traced, linked to its prompt
    assert (body["prompt_name"], body["prompt_version_number"]) == ("example", 3)
    assert body["prompt_input_variables"] == {"product": "toasters"}
    assert body["tags"] == ["route:/example", "endpoint:invoke", "chain:example",
                            "prompt:example", "prompt_version:3", "prompt_label:prod"]
    metadata = response.json()["metadata"]
    assert metadata["promptlayer_request_id"] == 1
    assert metadata["promptlayer_prompt_versions"] == {"example": 3}
    assert response.headers[REQUEST_ID_HEADER.decode()] == "1"


async def test_only_promptserve_traces(mounted: tuple[FastAPI, FakeDelivery],
                                       request: pytest.FixtureRequest) -> None:
    app, _ = mounted
    traced = {r.path for r in app.router.routes  # type: ignore[attr-defined]
              if isinstance(getattr(r, "app", None), TracedEndpoint)}
    endpoints = ("invoke", "batch", "stream", "stream_log", "stream_events")
    # LangServe mounts each endpoint twice: plain and under a config hash.
    expected = set() if "langserve" in request.node.callspec.id else {
        f"/example{infix}/{endpoint}" for endpoint in endpoints
        for infix in ("", "/c/{config_hash}")
    }
    assert traced == expected
