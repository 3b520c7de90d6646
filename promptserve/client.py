"""A Python client for promptserve chains: LangServe's RemoteRunnable, plus the
PromptLayer request id and feedback token of every answer, plus feedback.

    client = PromptServeClient("http://127.0.0.1:8000/example/")
    answer = client.invoke({"product": "toasters"})
    client.feedback(answer.request_id, 90, feedback_token=answer.feedback_token)
"""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
from httpx_sse import aconnect_sse, connect_sse
from langserve import RemoteRunnable

__all__ = ["PromptServeClient", "TracedAnswer", "TracedStream", "detach_finalizer"]


def detach_finalizer(runnable: RemoteRunnable[Any, Any]) -> None:
    """Drop RemoteRunnable's garbage-collection finalizer once its clients are closed.

    LangServe closes a RemoteRunnable's clients from a `weakref.finalize`; when the
    collector happens to run it inside `ThreadPoolExecutor.submit` on a thread with a
    running event loop, its own `executor.submit` waits on the lock the outer submit holds
    and the thread hangs. Closing explicitly and detaching removes that hazard.
    """
    for ref in weakref.getweakrefs(runnable):
        if isinstance(ref.__callback__, weakref.finalize):
            ref.__callback__.detach()


@dataclass
class TracedAnswer:
    """A chain's output with what is needed to score it later."""

    output: Any
    run_id: str | None
    request_id: int | None
    request_ids: list[int | None]
    feedback_token: str | None


@dataclass
class TracedStream:
    """Chunks as they arrive; `answer` is filled when the stream has ended."""

    chunks: list[Any] = field(default_factory=list)
    answer: TracedAnswer | None = None


class PromptServeClient:
    """RemoteRunnable for one chain URL, returning TracedAnswer and sending feedback."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = 60.0,
        feedback_url: str | None = None,
    ) -> None:
        """`url` is the chain's route (`http://host:8000/example/`)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self.runnable: RemoteRunnable[Any, Any] = RemoteRunnable(
            url, timeout=timeout, headers=headers
        )
        self.feedback_url = feedback_url or urljoin(self.runnable.url, "../feedback")
        self._serializer = self.runnable._lc_serializer

    # lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync connection pool (use `aclose` if the async one was used)."""
        self.runnable.sync_client.close()
        detach_finalizer(self.runnable)

    async def aclose(self) -> None:
        """Close both connection pools, from the event loop that used the async one."""
        self.runnable.sync_client.close()
        await self.runnable.async_client.aclose()
        detach_finalizer(self.runnable)

    def __enter__(self) -> PromptServeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> PromptServeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # invoke / batch -------------------------------------------------------------------

    def invoke(self, input: Any) -> TracedAnswer:
        """Run the chain once."""
        response = self.runnable.sync_client.post("invoke", json=self._invoke_body(input))
        return self._answer(_checked(response).json())

    async def ainvoke(self, input: Any) -> TracedAnswer:
        """Run the chain once (async)."""
        response = await self.runnable.async_client.post("invoke", json=self._invoke_body(input))
        return self._answer(_checked(response).json())

    def batch(self, inputs: Sequence[Any]) -> list[TracedAnswer]:
        """Run the chain on each input."""
        response = self.runnable.sync_client.post("batch", json=self._batch_body(inputs))
        return self._answers(_checked(response).json())

    async def abatch(self, inputs: Sequence[Any]) -> list[TracedAnswer]:
        """Run the chain on each input (async)."""
        response = await self.runnable.async_client.post("batch", json=self._batch_body(inputs))
        return self._answers(_checked(response).json())

    # stream ---------------------------------------------------------------------------

    def stream(self, input: Any, into: TracedStream | None = None) -> Iterator[Any]:
        """Yield output chunks; `into.answer` holds the ids once the stream ended."""
        into = into if into is not None else TracedStream()
        with connect_sse(
            self.runnable.sync_client, "POST", "stream", json=self._invoke_body(input)
        ) as events:
            if events.response.status_code >= 400:
                events.response.read()
                _checked(events.response)
            for sse in events.iter_sse():
                chunk = self._on_event(sse.event, sse.data, into)
                if chunk is not _NOTHING:
                    yield chunk
                if sse.event == "end":
                    break

    async def astream(self, input: Any, into: TracedStream | None = None) -> AsyncIterator[Any]:
        """Yield output chunks (async); `into.answer` holds the ids once the stream ended."""
        into = into if into is not None else TracedStream()
        async with aconnect_sse(
            self.runnable.async_client, "POST", "stream", json=self._invoke_body(input)
        ) as events:
            if events.response.status_code >= 400:
                await events.response.aread()
                _checked(events.response)
            async for sse in events.aiter_sse():
                chunk = self._on_event(sse.event, sse.data, into)
                if chunk is not _NOTHING:
                    yield chunk
                if sse.event == "end":
                    break

    # feedback -------------------------------------------------------------------------

    def feedback(
        self,
        request_id: int,
        score: int,
        *,
        name: str = "default",
        comment: str | None = None,
        feedback_token: str | None = None,
    ) -> dict[str, Any]:
        """Score an answer 0..100."""
        body = _feedback_body(request_id, score, name, comment, feedback_token)
        response = self.runnable.sync_client.post(self.feedback_url, json=body)
        result: dict[str, Any] = _checked(response).json()
        return result

    async def afeedback(
        self,
        request_id: int,
        score: int,
        *,
        name: str = "default",
        comment: str | None = None,
        feedback_token: str | None = None,
    ) -> dict[str, Any]:
        """Score an answer 0..100 (async)."""
        body = _feedback_body(request_id, score, name, comment, feedback_token)
        response = await self.runnable.async_client.post(self.feedback_url, json=body)
        result: dict[str, Any] = _checked(response).json()
        return result

    # helpers --------------------------------------------------------------------------

    def _invoke_body(self, input: Any) -> dict[str, Any]:
        return {"input": self._serializer.dumpd(input)}

    def _batch_body(self, inputs: Sequence[Any]) -> dict[str, Any]:
        return {"inputs": self._serializer.dumpd(list(inputs))}

    def _answer(self, payload: dict[str, Any]) -> TracedAnswer:
        return _traced(self._serializer.loadd(payload["output"]), payload.get("metadata") or {})

    def _answers(self, payload: dict[str, Any]) -> list[TracedAnswer]:
        outputs = self._serializer.loadd(payload["output"])
        metadatas = (payload.get("metadata") or {}).get("responses") or [{}] * len(outputs)
        return [_traced(out, meta) for out, meta in zip(outputs, metadatas, strict=True)]

    def _on_event(self, event: str, data: str, into: TracedStream) -> Any:
        if event == "data":
            chunk = self._serializer.loads(data.encode())
            into.chunks.append(chunk)
            return chunk
        if event == "metadata":
            metadata = json.loads(data)
            if "promptlayer_request_ids" in metadata:
                into.answer = _traced(_joined(into.chunks), metadata)
        elif event == "error":
            raise httpx.HTTPStatusError(
                f"the chain failed: {data}",
                request=httpx.Request("POST", "stream"),
                response=httpx.Response(500, text=data),
            )
        return _NOTHING


_NOTHING = object()


def _traced(output: Any, metadata: dict[str, Any]) -> TracedAnswer:
    return TracedAnswer(
        output=output,
        run_id=metadata.get("run_id"),
        request_id=metadata.get("promptlayer_request_id"),
        request_ids=list(metadata.get("promptlayer_request_ids") or []),
        feedback_token=metadata.get("feedback_token"),
    )


def _joined(chunks: list[Any]) -> Any:
    if chunks and all(isinstance(chunk, str) for chunk in chunks):
        return "".join(chunks)
    return chunks


def _feedback_body(
    request_id: int, score: int, name: str, comment: str | None, token: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": request_id, "score": score, "name": name}
    if comment is not None:
        body["comment"] = comment
    if token is not None:
        body["feedback_token"] = token
    return body


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise httpx.HTTPStatusError(
            f"{response.status_code} from {response.request.url}: {response.text}",
            request=response.request,
            response=response,
        )
    return response
