"""`promptserve.server.add_routes` on a team's own FastAPI app, against the service fixture's
embedded backend (registry and log) and the fake model: everything the service adds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from langchain_core.output_parsers import StrOutputParser
from promptlayer import AsyncPromptLayer

from promptserve import RegistryPrompt
from promptserve.prompts import PromptStore, afetch_template, build_chat_model
from promptserve.server import FeedbackTokens, add_routes
from promptserve.tracing import LogDelivery
from tests.integration.service.conftest import BACKEND_KEY, Service
from tests.integration.service.test_streams import _events
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.remote import remote_runnable
from tests.utils.servers import serve_in_thread


@pytest.fixture(scope="module")
def own_app(service: Service, fake_llm: tuple[FakeOpenAI, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    registry = f"{service.url}/promptlayer"
    slogan = RegistryPrompt("slogan", label="prod")
    delivery = LogDelivery(base_url=registry, api_key=BACKEND_KEY,
                           spool_dir=tmp_path_factory.mktemp("own") / "spool")
    client = AsyncPromptLayer(api_key=BACKEND_KEY, base_url=registry)
    store = PromptStore(
        [slogan],
        fetch=lambda prompt: afetch_template(client, prompt),
        build_model=lambda name, model: build_chat_model(
            model, api_key="sk-test", base_url=f"{fake_llm[1]}/v1"),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await delivery.start()
        await store.load()
        yield
        await delivery.aclose(5)

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    add_routes(app, slogan | StrOutputParser(), path="/mine", delivery=delivery, store=store,
               tokens=FeedbackTokens(secret=b"team-secret", ttl_seconds=60))
    with serve_in_thread(app) as url:
        yield url


def test_invoke_carries_ids_versions_and_token(own_app: str, service: Service) -> None:
    response = httpx.post(f"{own_app}/mine/invoke", json={"input": {"product": "kites"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == "echo: Write a slogan for kites."
    metadata = body["metadata"]
    (request_id,) = metadata["promptlayer_request_ids"]
    assert response.headers["x-promptlayer-request-id"] == str(request_id)
    assert metadata["promptlayer_prompt_versions"] == {"slogan": 1}
    assert metadata["feedback_token"]
    stored = service.stored_request(request_id)
    assert {"route:/mine", "endpoint:invoke", "chain:mine", "prompt:slogan"} <= set(stored["tags"])
    assert service.linked_prompt(request_id) == ("slogan", 1)


def test_input_is_typed_by_the_loaded_prompt(own_app: str) -> None:
    assert httpx.post(f"{own_app}/mine/invoke", json={"input": {}}).status_code == 422
    schema = httpx.get(f"{own_app}/mine/input_schema").json()
    assert schema["required"] == ["product"]


def test_streams_end_with_the_id_event(own_app: str) -> None:
    events = _events(f"{own_app}/mine/stream", {"input": {"product": "kites"}})
    assert [name for name, _ in events][-2:] == ["metadata", "end"]


def test_remote_runnable_and_the_teams_own_routes(own_app: str) -> None:
    with remote_runnable(f"{own_app}/mine/") as remote:
        assert remote.invoke({"product": "vans"}) == "echo: Write a slogan for vans."
    assert httpx.get(f"{own_app}/hello").json() == {"hello": "world"}


def test_an_api_router_is_refused() -> None:
    from fastapi import APIRouter

    with pytest.raises(TypeError, match="FastAPI app"):
        add_routes(APIRouter(), StrOutputParser(), path="/x", delivery=None)  # type: ignore[arg-type]


def test_only_the_chain_routes_are_guarded(service: Service) -> None:
    # A body shaped like a chain batch, too big for one, sent to the backend's batch route:
    # the backend answers it itself (the chain guard knows its own routes, not path endings).
    too_many = {"inputs": [{"product": "x"}] * (service.settings.max_batch_size + 1)}
    response = httpx.post(f"{service.url}/promptlayer/log-request/batch", json=too_many,
                          headers={"X-API-KEY": BACKEND_KEY})
    assert response.status_code != 413, response.text
    assert response.status_code < 500
    chain = httpx.post(f"{service.url}/example/batch", json=too_many,
                       headers={"X-API-Key": "service-key-for-tests"})
    assert chain.status_code == 413
