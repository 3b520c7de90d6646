"""Hands each caller the PromptLayer request ids of its run, without forking LangServe.

`TracedEndpoint` wraps the ASGI app of one chain endpoint route (Starlette's per-route
middleware slot, `Route.app`), so it sees exactly the routes `add_routes` mounted:
- invoke and batch: the JSON body is held back; `promptlayer_request_id`,
  `promptlayer_request_ids`, `promptlayer_prompt_versions`, `promptlayer_release_arms` (the
  split arm of each prompt on a split label, `{}` for none) and `feedback_token` are added to
  each run's `metadata`, and invoke also gets the `X-PromptLayer-Request-Id` header;
- stream, stream_log, stream_events: chunks pass through untouched until LangServe's
  `event: end`, right before which one event carries the same fields, in the form each
  endpoint's stock client already reads (see `_id_event`).
A model answer that misses its prompt's schema (`ModelOutputError`) answers 502 with the
reason, on invoke and batch, and as the stream's error event.

Before LangServe sees a body, it is read once here and refused with a 422 naming the problem
(`input_problem`) when LangServe would fail on it with a 500 or a cut stream: bytes that are
not UTF-8, JSON its parser recurses too deep on or that it cannot write back (NaN, numbers
past a double, lone surrogates, which no model client can send either), a body that is not
an object, batch `inputs` that are not a list or a `config` that is neither an object nor a
list of them. The body is then replayed to LangServe untouched. NUL characters are let
through: a model takes them, and their log is sanitised (promptserve.tracing._sanitize).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import ValidationError

from promptserve import json_codec
from promptserve.prompts import ModelOutputError
from promptserve.server._tokens import FeedbackTokens, request_subject, run_subject
from promptserve.server._trace import TRACE_SCOPE_KEY, RequestTrace

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MAX_INPUT_DEPTH",
    "REQUEST_ID_HEADER",
    "TracedEndpoint",
    "input_problem",
    "replaying",
    "run_summary",
]

REQUEST_ID_HEADER = b"x-promptlayer-request-id"
_END_EVENT = b"event: end"
_ERROR_EVENT = b"event: error"

MAX_INPUT_DEPTH = 100
"""How deeply a chain body may nest. LangServe's serializer (orjson) stops at 255 levels, and
the answer and its log wrap the input in a few more; no chain input comes close to 100."""


def input_problem(endpoint: str, raw: bytes) -> dict[str, Any] | None:
    """Why LangServe must not be given the body `raw` of `endpoint`, as a FastAPI-style
    validation error (`{"type", "loc", "msg"}`); None when it may."""
    try:
        body = json_codec.loads_body(raw, max_depth=MAX_INPUT_DEPTH)
    except json_codec.BodyError as error:
        return _problem("json_invalid", [], str(error))
    if not isinstance(body, dict):
        return _problem("model_type", [], "request body must be a JSON object")
    if json_codec.may_hold_bad_chars(raw):
        where = json_codec.find_chars(body, json_codec.LONE_SURROGATE)
        if where is not None:
            return _problem("string_unicode", where, "holds an unpaired surrogate (\\ud800-"
                            "\\udfff escape without its pair): not text a model can be sent")
    if endpoint == "batch":
        if "inputs" in body and not isinstance(body["inputs"], list):
            return _problem("list_type", ["inputs"], "inputs must be a list")
        config = body.get("config")
        if config is not None and not isinstance(config, dict) and not (
                isinstance(config, list) and all(isinstance(c, dict) for c in config)):
            return _problem("dict_type", ["config"],
                            "config must be an object or a list of objects, one per input")
    return None


def _problem(kind: str, where: list[str | int], message: str) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", *where], "msg": message}


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` that first hands out `body` again (then waits for the disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def run_summary(
    trace: RequestTrace, run_id: str, *, tokens: FeedbackTokens | None, wait_seconds: float
) -> dict[str, Any]:
    """The ids of one run's LLM calls, its prompt versions and a feedback token."""
    tracer = trace.tracer
    ids = await tracer.request_ids(UUID(run_id), timeout=wait_seconds) if tracer else []
    # The last call produced the answer a user would score.
    request_id = ids[-1] if ids else None
    summary: dict[str, Any] = {
        "run_id": run_id,
        "promptlayer_request_id": request_id,
        "promptlayer_request_ids": ids,
        "promptlayer_prompt_versions": trace.prompt_versions(UUID(run_id)),
        "promptlayer_release_arms": _release_arms(trace, run_id),
    }
    if tokens is not None:
        subject = request_subject(request_id) if request_id is not None else run_subject(run_id)
        summary["feedback_token"] = tokens.issue(subject)
    return summary


def _release_arms(trace: RequestTrace, run_id: str) -> dict[str, dict[str, Any]]:
    """Per prompt the run called on a split label: label, version served, release id."""
    pins = trace.runs.get(UUID(run_id))
    return pins.release_arms() if pins is not None else {}


def _json_response(status: int, body: dict[str, Any]) -> tuple[Message, Message]:
    raw = json_codec.dumps(body)
    return (
        {"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode())]},
        {"type": "http.response.body", "body": raw, "more_body": False},
    )


def output_error_body(error: ModelOutputError) -> dict[str, Any]:
    """What a caller is told when the model's answer misses its prompt's schema."""
    return {"detail": str(error), "prompt": error.prompt_name, "version": error.version,
            "reason": "the model's answer does not fit the prompt's output schema"}


class TracedEndpoint:
    """One chain endpoint: a fresh `RequestTrace` per request, ids written into the answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoint: str,
        tokens: FeedbackTokens | None,
        wait_seconds: float,
    ) -> None:
        """Wrap the route app of `endpoint`; answers wait at most `wait_seconds` for logs."""
        self.app = app
        self.endpoint = endpoint
        self.tokens = tokens
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Trace the request and rewrite its answer."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body
        problem = input_problem(self.endpoint, body)
        if problem is not None:
            for message in _json_response(422, {"detail": [problem]}):
                await send(message)
            return
        receive = replaying(body, receive)
        trace = RequestTrace(endpoint=self.endpoint)
        scope[TRACE_SCOPE_KEY] = trace
        rewriter: _JsonRewriter | _StreamRewriter
        if self.endpoint in ("invoke", "batch"):
            rewriter = _JsonRewriter(self, trace, send)
        else:
            rewriter = _StreamRewriter(self, trace, send)
        try:
            await self.app(scope, receive, rewriter.send)
        except ModelOutputError as error:
            if rewriter.started:
                raise
            for message in _json_response(502, output_error_body(error)):
                await send(message)
        except ValidationError as error:
            # LangServe validates each batch input without catching what pydantic raises
            # (invoke's input it answers 422 itself).
            if rewriter.started:
                raise
            detail = error.errors(include_url=False, include_context=False)
            for message in _json_response(422, {"detail": json_codec.loads(
                    json_codec.dumps(detail))}):
                await send(message)

    async def summary(self, trace: RequestTrace, run_id: str) -> dict[str, Any]:
        """The run's ids, versions and feedback token."""
        return await run_summary(trace, run_id, tokens=self.tokens,
                                 wait_seconds=self.wait_seconds)


class _JsonRewriter:
    """Holds back an invoke/batch response and adds the ids to its metadata."""

    def __init__(self, owner: TracedEndpoint, trace: RequestTrace, send: Send) -> None:
        self.owner, self.trace, self.downstream = owner, trace, send
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
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
        payload = json_codec.loads(raw)
        metadata = payload.get("metadata") or {}
        invoke = self.owner.endpoint == "invoke"
        runs = [metadata] if invoke else metadata.get("responses", [])
        if len(runs) == 1:  # invoke: no task for gather to wrap the one summary in
            summaries = [await self.owner.summary(self.trace, runs[0]["run_id"])]
        else:
            summaries = await asyncio.gather(
                *(self.owner.summary(self.trace, run["run_id"]) for run in runs)
            )
        for run, summary in zip(runs, summaries, strict=True):
            # LangServe's `feedback_tokens` (LangSmith's, always empty here) stays: its
            # OpenAPI schema requires it.
            run.update({k: v for k, v in summary.items() if k != "run_id"})
        request_id = summaries[0]["promptlayer_request_id"] if invoke else None
        return json_codec.dumps(payload), request_id


class _StreamRewriter:
    """Passes SSE chunks through and slips the id event in before `event: end`."""

    def __init__(self, owner: TracedEndpoint, trace: RequestTrace, send: Send) -> None:
        self.owner, self.trace, self.downstream = owner, trace, send
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body.startswith(_ERROR_EVENT) and isinstance(self.trace.error, ModelOutputError):
                # LangServe says only "Internal Server Error"; the caller can do better.
                error = {"status_code": 502, **output_error_body(self.trace.error)}
                message = {**message, "body": _sse("error", error)}
            elif body.startswith(_END_EVENT) and self.trace.runs:
                run_id = str(next(iter(self.trace.runs)))
                summary = await self.owner.summary(self.trace, run_id)
                event = _id_event(self.owner.endpoint, summary)
                await self.downstream(
                    {"type": "http.response.body", "body": event, "more_body": True})
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
