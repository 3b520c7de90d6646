"""A built chain under stock LangServe: the input schema and 422s come from its input type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml
from chains.catalog import CATALOG, TEMPLATES_DIR, build_chain
from fastapi import FastAPI
from langserve import add_routes


@pytest.fixture
def app() -> FastAPI:
    data = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    template = {
        "id": 1,
        "version": 1,
        "prompt_name": data["name"],
        "prompt_template": data["blueprint"],
        "metadata": data["metadata"],
    }
    chain = build_chain(CATALOG[0], template, api_key="k", base_url="http://127.0.0.1:9/v1")
    app = FastAPI()
    add_routes(app, chain, path="/example")
    return app


@pytest.mark.parametrize(
    "payload", [{}, {"product": 3}, {"product": "x", "unknown": "y"}, {"product": None}]
)
async def test_bad_input_is_422(app: FastAPI, payload: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/example/invoke", json={"input": payload})
    assert response.status_code == 422, response.text


async def test_input_schema_is_the_prompt_variables(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        schema = (await client.get("/example/input_schema")).json()
    assert schema["properties"] == {"product": {"title": "Product", "type": "string"}}
    assert schema["required"] == ["product"]
