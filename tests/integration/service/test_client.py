"""promptserve.client.PromptServeClient against the real service."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from promptserve.client import PromptServeClient, TracedStream
from tests.integration.service.conftest import Service


@pytest.fixture
def client(service: Service) -> Iterator[PromptServeClient]:
    with PromptServeClient(f"{service.url}/example/") as client:
        yield client


def test_invoke_returns_output_and_ids_then_feedback_lands(
    client: PromptServeClient, service: Service
) -> None:
    answer = client.invoke({"product": "cups"})
    assert answer.output.endswith("makes cups.")
    assert isinstance(answer.request_id, int) and answer.request_ids == [answer.request_id]
    result = client.feedback(
        answer.request_id, 70, name="tone", comment="ok", feedback_token=answer.feedback_token
    )
    assert result["score"] == 70
    assert service.stored_request(answer.request_id)["scores"] == {"tone": 70}


async def test_async_invoke_batch_and_feedback(service: Service) -> None:
    async with PromptServeClient(f"{service.url}/example/") as client:
        await _async_invoke_batch_and_feedback(client, service)


async def _async_invoke_batch_and_feedback(client: PromptServeClient, service: Service) -> None:
    answer = await client.ainvoke({"product": "bowls"})
    assert isinstance(answer.request_id, int)
    answers = await client.abatch([{"product": "a"}, {"product": "b"}])
    assert [a.output[-2:] for a in answers] == ["a.", "b."]
    assert len({a.request_id for a in answers}) == 2
    await client.afeedback(answers[1].request_id, 12, feedback_token=answers[1].feedback_token)
    assert service.stored_request(answers[1].request_id)["scores"] == {"default": 12}


def test_sync_batch(client: PromptServeClient) -> None:
    answers = client.batch([{"product": "x"}])
    assert answers[0].output.endswith("makes x.") and isinstance(answers[0].request_id, int)


def test_stream_yields_chunks_and_fills_the_answer(client: PromptServeClient) -> None:
    stream = TracedStream()
    chunks = list(client.stream({"product": "hats"}, into=stream))
    assert len(chunks) > 1
    assert stream.answer is not None
    assert stream.answer.output == "".join(chunks)
    assert isinstance(stream.answer.request_id, int)


async def test_astream_yields_chunks_and_fills_the_answer(service: Service) -> None:
    stream = TracedStream()
    async with PromptServeClient(f"{service.url}/example/") as client:
        chunks = [chunk async for chunk in client.astream({"product": "hats"}, into=stream)]
    assert stream.answer is not None and stream.answer.output == "".join(chunks)


def test_errors_surface_as_http_status_errors(client: PromptServeClient) -> None:
    with pytest.raises(httpx.HTTPStatusError) as raised:
        client.invoke({"wrong": "field"})
    assert raised.value.response.status_code == 422
    with pytest.raises(httpx.HTTPStatusError) as raised:
        client.feedback(1, 50, feedback_token="forged")
    assert raised.value.response.status_code in (403, 404)
