"""Hands each caller the PromptLayer request ids of its run, without forking LangServe.

An ASGI middleware around the chain endpoints:
- invoke and batch: the JSON body is held back, `promptlayer_request_id`,
  `promptlayer_request_ids` and `feedback_token` are added to each run's `metadata`, and
  invoke also gets the `X-PromptLayer-Request-Id` header;
- stream, stream_log, stream_events: chunks pass through untouched until LangServe's
  `event: end`, right before which one event carries the same fields, in the form each
  endpoint's stock client already reads (see `_id_event`).

The tracer is created by the per-request config modifier and handed over through the
ASGI scope (`RequestTrace`), which both sides see for the same request.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import json_codec
from app.feedback import FeedbackTokens, request_subject, run_subject
from app.service._tags import CHAIN_ENDPOINTS, endpoint_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from app.tracing import PromptLayerTracer

__all__ = ["TRACE_SCOPE_KEY", "RequestTrace", "TraceResponseMiddleware"]

TRACE_SCOPE_KEY = "promptserve.trace"
REQUEST_ID_HEADER = b"x-promptlayer-request-id"
_END_EVENT = b"event: end"


@dataclass
class RequestTrace:
    """What one HTTP request's chain runs were traced with (filled by the config modifier)."""

    tracer: PromptLayerTracer | None = None


class TraceResponseMiddleware:
    """Adds request ids and feedback tokens to the chain endpoints' responses."""

    def __init__(self, app: ASGIApp, *, tokens: FeedbackTokens, wait_seconds: float) -> None:
        """Wrap `app`; responses wait at most `wait_seconds` for a log to land."""
        self.app = app
        self.tokens = tokens
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route chain endpoints through the right rewriter; pass everything else on."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_of(scope["path"])
        if endpoint not in CHAIN_ENDPOINTS:
            await self.app(scope, receive, send)
            return
        trace = RequestTrace()
        scope[TRACE_SCOPE_KEY] = trace
        if endpoint in ("invoke", "batch"):
            await self.app(scope, receive, _JsonRewriter(self, trace, endpoint, send).send)
        else:
            await self.app(scope, receive, _StreamRewriter(self, trace, endpoint, send).send)

    async def run_summary(self, tracer: PromptLayerTracer, run_id: str) -> dict[str, Any]:
        """The ids of one run's LLM calls and a feedback token for its answer."""
        ids = await tracer.request_ids(uuid.UUID(run_id), timeout=self.wait_seconds)
        # The last call produced the answer a user would score.
        request_id = ids[-1] if ids else None
        subject = request_subject(request_id) if request_id is not None else run_subject(run_id)
        return {
            "run_id": run_id,
            "promptlayer_request_id": request_id,
            "promptlayer_request_ids": ids,
            "feedback_token": self.tokens.issue(subject),
        }


class _JsonRewriter:
    """Holds back an invoke/batch response and adds the ids to its metadata."""

    def __init__(
        self, owner: TraceResponseMiddleware, trace: RequestTrace, endpoint: str, send: Send
    ) -> None:
        self.owner, self.trace, self.endpoint, self.downstream = owner, trace, endpoint, send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] != 200 or self.trace.tracer is None:
                await self.downstream(message)  # errors pass through untouched
                return
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.downstream(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body, request_id = await self._rewrite(b"".join(self.chunks))
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        if request_id is not None:
            headers.append((REQUEST_ID_HEADER, str(request_id).encode()))
        await self.downstream({**self.start, "headers": headers})
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})

    async def _rewrite(self, raw: bytes) -> tuple[bytes, int | None]:
        tracer = self.trace.tracer
        assert tracer is not None
        payload = json_codec.loads(raw)
        metadata = payload.get("metadata") or {}
        runs = metadata.get("responses", []) if self.endpoint == "batch" else [metadata]
        if len(runs) == 1:  # invoke: no task for gather to wrap the one summary in
            summaries = [await self.owner.run_summary(tracer, runs[0]["run_id"])]
        else:
            summaries = await asyncio.gather(
                *(self.owner.run_summary(tracer, run["run_id"]) for run in runs)
            )
        for run, summary in zip(runs, summaries, strict=True):
            run.update({k: v for k, v in summary.items() if k != "run_id"})
        request_id = summaries[0]["promptlayer_request_id"] if self.endpoint == "invoke" else None
        return json_codec.dumps(payload), request_id


class _StreamRewriter:
    """Passes SSE chunks through and slips the id event in before `event: end`."""

    def __init__(
        self, owner: TraceResponseMiddleware, trace: RequestTrace, endpoint: str, send: Send
    ) -> None:
        self.owner, self.trace, self.endpoint, self.downstream = owner, trace, endpoint, send

    async def send(self, message: Message) -> None:
        if (
            message["type"] == "http.response.body"
            and message.get("body", b"").startswith(_END_EVENT)
            and self.trace.tracer is not None
            and self.trace.tracer.root_run_ids
        ):
            run_id = str(self.trace.tracer.root_run_ids[0])
            summary = await self.owner.run_summary(self.trace.tracer, run_id)
            event = _id_event(self.endpoint, summary)
            await self.downstream({"type": "http.response.body", "body": event, "more_body": True})
        await self.downstream(message)


def _id_event(endpoint: str, summary: dict[str, Any]) -> bytes:
    """The id event in the form the endpoint's stock RemoteRunnable already reads."""
    if endpoint == "stream":
        # RemoteRunnable.astream skips `metadata` events.
        return _sse("metadata", summary)
    if endpoint == "stream_events":
        # A custom event, as `adispatch_custom_event` would produce it.
        event = {
            "event": "on_custom_event",
            "name": "promptlayer",
            "run_id": summary["run_id"],
            "tags": [],
            "metadata": {},
            "parent_ids": [],
            "data": summary,
        }
        return _sse("data", event)
    # stream_log: a JSON patch that adds the ids under /promptlayer.
    return _sse("data", {"ops": [{"op": "add", "path": "/promptlayer", "value": summary}]})


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: %s\r\ndata: %s\r\n\r\n" % (event.encode(), json_codec.dumps(data))
