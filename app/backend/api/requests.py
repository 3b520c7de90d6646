"""Request log routes: /log-request and the legacy /track-request (docs/PROMPTLAYER_API.md
§2).

Choices the API leaves open (docs/PROMPTLAYER_API.md §8):
- `score` on /log-request defaults to 0 in the SDK, so storing it always would mark every
  request as "scored 0". It is stored as a named score only when `score_name` is set or
  `score > 0` (name `score_name`, else "default").
- `error_message` longer than 1024 characters is truncated, not refused: a log is evidence
  of a failure and must not be lost over the length of its message.
- A prompt that does not resolve (unknown id, name or version) leaves the request unlinked
  rather than refusing the log, for the same reason.
- `Idempotency-Key` (our extension): a repeat with the same key answers the first id (201)
  and stores nothing new, so a retried delivery cannot duplicate a request.
- Every log is fitted to the hosted PromptLayer's `LogRequest` schema
  (`promptserve.tracing._hosted_schema`) before it is validated: what the hosted service
  would refuse the whole log for (a content block or tool it lacks, a tag over 512
  characters, a metadata value that is not text, an out-of-range optional field) is removed,
  the rest stored, and the log says so: metadata `promptserve_stored_without` lists what was
  removed, and a warning names the log (extras `hosted_schema_removed`, `langchain_run_id`;
  the test suite fails a test whose traced logs got one). Only a log that cannot be stored at
  all (no provider, model or times; a value the database cannot hold) is refused with 400,
  which the delivery counts as rejected and logs with this reason. Epoch-second times stay
  accepted, as the hosted service takes those its SDK sends.
- `POST /log-request/batch` (our extension): up to 1,000 /log-request bodies, each with its
  idempotency key, in one call. Each log is checked and stored as /log-request would, and
  answered on its own with what /log-request would answer (`{"status_code", "body"}`), in
  order: one bad log never refuses the others. Only a bad envelope (not a JSON object, no
  `requests` list, too many) refuses the whole call. A delivery client sending many logs at
  once pays one HTTP exchange instead of one per log (BENCHMARKS.md, "Ingest").
  The batch's valid logs are stored in one write of a few multi-row statements. Should the
  database refuse that write, each log is stored on its own: one it refuses answers 500
  (retryable, as /log-request's 500 is), the others land.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.backend.api._http import (
    authenticated_body,
    may_hold_unstorable,
    parse_object,
    refuse_unstorable,
    store_of,
    utcnow,
    validate,
)
from app.backend.api.schemas import (
    LogBatchEntry,
    LogRequestBatchBody,
    LogRequestBody,
    TrackRequestBody,
)
from app.backend.errors import ApiError, BadRequest
from app.backend.store.requests import (
    NewRequest,
    group_exists,
    insert_request,
    insert_requests,
    resolve_prompt_link,
    version_blueprint,
)
from promptserve import json_codec
from promptserve.tracing._hosted_schema import Unfit, fit

if TYPE_CHECKING:
    from app.backend.store import Store

__all__ = ["STORED_WITHOUT_KEY", "checked_log", "ingest_log", "ingest_log_batch", "router",
           "store_log"]

logger = logging.getLogger(__name__)

router = APIRouter()

_MAX_ERROR_MESSAGE = 1024
_MAX_NOTE = 1024

STORED_WITHOUT_KEY = "promptserve_stored_without"
"""Metadata key of a stored log that lists what was removed to fit the hosted schema."""


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > 256:
        raise BadRequest("Idempotency-Key header must be 1 to 256 characters")
    return key


def _truncate(message: str | None) -> str | None:
    return message[:_MAX_ERROR_MESSAGE] if message is not None else None


@router.post("/log-request", status_code=201)
async def log_request(request: Request) -> JSONResponse:
    """Store one LLM request; answer its id (201)."""
    key = _idempotency_key(request)
    body = checked_log(await authenticated_body(request), key)
    answer = await store_log(store_of(request), body, key)
    return JSONResponse(answer, status_code=201)


@router.post("/log-request/batch")
async def log_request_batch(request: Request) -> JSONResponse:
    """Store many logs; one result per log, in order (200 unless the envelope is bad)."""
    batch = validate(LogRequestBatchBody, await authenticated_body(request, whole=False))
    # Unstorable characters refuse only the log holding them (a cheap test of the raw
    # bytes first; `request.body()` is cached).
    suspect = may_hold_unstorable(await request.body())
    results = await _store_each(store_of(request), batch.requests, check_chars=suspect)
    return JSONResponse({"results": results})


async def ingest_log_batch(store: Store, payload: Any) -> list[dict[str, Any]]:
    """What POST /log-request/batch answers in `results`, for a caller in this process."""
    raw = json_codec.dumps(payload)
    batch = validate(LogRequestBatchBody, parse_object(raw, whole=False))
    return await _store_each(store, batch.requests, check_chars=may_hold_unstorable(raw))


async def _store_each(
    store: Store, entries: Sequence[LogBatchEntry], *, check_chars: bool
) -> list[dict[str, Any]]:
    """Each entry's answer as /log-request would give it; the valid ones stored together."""
    answers: list[dict[str, Any]] = [{} for _ in entries]
    valid: list[tuple[int, LogRequestBody, str | None]] = []
    for index, entry in enumerate(entries):
        try:
            if check_chars:
                refuse_unstorable(entry.body)
            valid.append((index, checked_log(entry.body, entry.idempotency_key),
                          entry.idempotency_key))
        except ApiError as error:
            answers[index] = {"status_code": error.status, "body": {"message": error.message}}
    links = await _prompt_links(store, [body for _, body, _ in valid])
    linked = [(index, body, key, links[_link_key(body)]) for index, body, key in valid]
    requests = [_new_request(body, key, link) for _, body, key, link in linked]
    for (index, body, _, link), request_id in zip(linked, await _write_all(store, requests),
                                                  strict=True):
        answers[index] = (
            {"status_code": 201, "body": _answer(request_id, link[1], body)}
            if request_id is not None
            # Retryable, as a 500 of /log-request is: the client sends it again, its key dedupes.
            else {"status_code": 500, "body": {"message": "the log could not be stored"}}
        )
    return answers


async def _write_all(store: Store, requests: list[NewRequest]) -> list[int | None]:
    """The ids of `requests`, stored in one write. If that write fails, each is stored in a
    write of its own, as /log-request would, so a log the database refuses (None) does not
    take the others down with it."""
    if not requests:
        return []
    now = utcnow()
    try:
        stored = await store.write(lambda c: insert_requests(c, requests=requests, now=now))
        return [request_id for request_id, _ in stored]
    except Exception:
        logger.warning("a batch of %d logs could not be stored together; storing each alone",
                       len(requests), exc_info=True)
    alone = await asyncio.gather(
        *(store.write(functools.partial(insert_requests, requests=[request], now=now))
          for request in requests),
        return_exceptions=True,
    )
    ids: list[int | None] = []
    for request, answer in zip(requests, alone, strict=True):
        if isinstance(answer, BaseException):
            logger.error("log %s could not be stored", request.idempotency_key,
                         exc_info=answer)
            ids.append(None)
        else:
            ids.append(answer[0][0])
    return ids


async def ingest_log(store: Store, payload: Any, idempotency_key: str | None) -> dict[str, Any]:
    """What POST /log-request does, for a caller in the same process (no HTTP, no key).

    The body goes through the same JSON checks and validation as over HTTP; BadRequest
    (an ApiError) for what the route would answer 400.
    """
    # Encoded as the HTTP path's poster encodes it (promptserve.json_codec), so both paths
    # accept and refuse the same bodies.
    body = checked_log(parse_object(json_codec.dumps(payload)), idempotency_key)
    return await store_log(store, body, idempotency_key)


def checked_log(payload: dict[str, Any], idempotency_key: str | None = None) -> LogRequestBody:
    """A /log-request body as it is stored: without the parts the hosted schema refuses
    (named in its metadata and in a warning), then validated; BadRequest when it cannot be
    stored at all."""
    try:
        fitted = fit(payload)
    except Unfit as error:
        # What the hosted schema cannot do without is what validation refuses too: answer
        # validation's reasons, as before this check.
        validate(LogRequestBody, payload)
        raise BadRequest(f"the log cannot be stored: {error}") from error
    body = validate(LogRequestBody, fitted.body)
    if fitted.removed:
        note = "; ".join(fitted.removed)
        body.metadata[STORED_WITHOUT_KEY] = (
            note if len(note) <= _MAX_NOTE else note[: _MAX_NOTE - 1] + "…")
        run_id = body.metadata.get("_langchain_run_id")
        logger.warning(
            "log %s does not fit the hosted PromptLayer schema; stored without: %s",
            idempotency_key or run_id or "(no key)", note,
            extra={"hosted_schema_removed": list(fitted.removed), "langchain_run_id": run_id},
        )
    return body


async def store_log(
    store: Store, body: LogRequestBody, idempotency_key: str | None
) -> dict[str, Any]:
    """Store a validated /log-request body; the answer the SDK reads (id first)."""
    link = await _prompt_link(store, *_link_key(body))
    request = _new_request(body, idempotency_key, link)
    request_id, _ = await store.write(
        lambda c: insert_requests(c, requests=[request], now=utcnow())[0]
    )
    return _answer(request_id, link[1], body)


_LinkKey = tuple[int | None, str | None, int | None]


def _link_key(body: LogRequestBody) -> _LinkKey:
    return body.prompt_id, body.prompt_name, body.prompt_version_number


async def _prompt_links(
    store: Store, bodies: Sequence[LogRequestBody]
) -> dict[_LinkKey, tuple[int | None, Any]]:
    """(version id, blueprint) per distinct prompt of `bodies` (a batch names few, and a
    remembered link answers without suspending)."""
    keys = dict.fromkeys(_link_key(body) for body in bodies)
    return {key: await _prompt_link(store, *key) for key in keys}


def _new_request(
    body: LogRequestBody, idempotency_key: str | None, link: tuple[int | None, Any]
) -> NewRequest:
    values = {
        "kind": "log",
        "provider": body.provider,
        "model": body.model,
        "input": body.input,
        "output": body.output,
        "parameters": body.parameters,
        "metadata": body.metadata,
        "prompt_version_id": link[0],
        "prompt_input_variables": body.prompt_input_variables,
        "input_tokens": body.input_tokens,
        "output_tokens": body.output_tokens,
        "price": body.price,
        "function_name": body.function_name,
        "status": body.status,
        "error_type": body.error_type,
        "error_message": _truncate(body.error_message),
        "request_start_time": body.request_start_time,
        "request_end_time": body.request_end_time,
        "api_type": body.api_type,
    }
    score = None
    if body.score_name is not None or body.score > 0:
        score = (body.score_name or "default", body.score)
    return NewRequest(values=values, tags=body.tags, score=score,
                      idempotency_key=idempotency_key)


def _answer(request_id: int, blueprint: Any, body: LogRequestBody) -> dict[str, Any]:
    """What /log-request answers (the SDK reads the id first)."""
    return {
        "id": request_id,
        "prompt_version": blueprint,
        "status": body.status,
        "error_type": body.error_type,
        "error_message": body.error_message,
    }


async def _prompt_link(
    store: Store, prompt_id: int | None, prompt_name: str | None, version: int | None
) -> tuple[int | None, Any]:
    """(version id, blueprint) of a log's prompt fields; (None, None) when they don't resolve."""
    if prompt_id is None and not prompt_name:
        return None, None
    # The id wins over the name when both are sent (resolve_prompt_link).
    key = (
        (prompt_id, None if prompt_id is not None else prompt_name, version)
        if version is not None
        else None
    )
    if key is not None and (known := store.prompt_links.get(key)) is not None:
        return known

    # Resolve on the reader pool: keeps the single writer busy only with inserts.
    def resolve(c: Any) -> tuple[int | None, Any]:
        found = resolve_prompt_link(
            c, prompt_id=prompt_id, prompt_name=prompt_name, version=version
        )
        return found, version_blueprint(c, version_id=found)

    version_id, blueprint = await store.read(resolve)
    if key is not None and version_id is not None:
        store.prompt_links.put(key, version_id, blueprint)
    return version_id, blueprint


def _usage(response: Any) -> tuple[int, int]:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0, 0

    def count(*names: str) -> int:
        for name in names:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
                return value
        return 0

    return count("prompt_tokens", "input_tokens"), count("completion_tokens", "output_tokens")


@router.post("/track-request")
@router.post("/rest/track-request")
async def track_request(request: Request) -> JSONResponse:
    """Store a raw provider call (kwargs in, response out); answer its id."""
    body = validate(TrackRequestBody, await authenticated_body(request))
    store = store_of(request)

    def resolve(c: Any) -> tuple[int | None, Any, bool]:
        found = resolve_prompt_link(
            c, prompt_id=body.prompt_id, prompt_name=None, version=body.prompt_version
        )
        known_group = body.group_id is not None and group_exists(c, group_id=body.group_id)
        return found, version_blueprint(c, version_id=found), known_group

    version_id, blueprint, known_group = await store.read(resolve)
    model = body.kwargs.get("model")
    input_tokens, output_tokens = _usage(body.request_response)
    values = {
        "kind": "track",
        "provider": body.provider_type,
        "model": model if isinstance(model, str) else "",
        "input": body.kwargs,
        "output": body.request_response,
        "parameters": {
            k: v for k, v in body.kwargs.items() if k not in ("messages", "prompt", "model")
        },
        "metadata": body.metadata,
        "prompt_version_id": version_id,
        "prompt_input_variables": body.prompt_input_variables,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "price": 0.0,
        "function_name": body.function_name,
        "status": body.status,
        "error_type": body.error_type,
        "error_message": _truncate(body.error_message),
        "request_start_time": body.request_start_time,
        "request_end_time": body.request_end_time,
        "api_type": body.api_type,
        # An unknown group id is dropped rather than failing the log.
        "group_id": body.group_id if known_group else None,
    }
    request_id, _ = await store.write(
        lambda c: insert_request(
            c, values=values, tags=body.tags, score=None, idempotency_key=None, now=utcnow()
        )
    )
    return JSONResponse(
        {
            "success": True,
            "request_id": request_id,
            "prompt_blueprint": blueprint if body.return_prompt_blueprint else None,
        }
    )
