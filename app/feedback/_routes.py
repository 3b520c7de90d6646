"""`POST /feedback`: a user's score for one logged answer, checked and passed to PromptLayer."""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from promptlayer import exceptions as pl_errors
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from app.feedback._pending import PendingFeedback, PendingScore
from app.keys import KeyRing, presented_key
from app.observability.metrics import count_feedback
from promptserve import json_codec
from promptserve.server._tokens import ExpiredToken, InvalidToken, request_subject, run_subject

if TYPE_CHECKING:
    from promptlayer import AsyncPromptLayer

    from promptserve.server._tokens import FeedbackTokens

__all__ = ["CALL_SECONDS", "FeedbackIn", "FeedbackOut", "FeedbackService", "Outcome", "router"]

logger = logging.getLogger(__name__)

RunLookup = Callable[[str], "int | None"]

# How long /feedback gives PromptLayer to take a score (and its comment) before keeping it
# to apply later, so that the answer comes within a second even when PromptLayer is down.
CALL_SECONDS = 0.75


class FeedbackIn(BaseModel):
    """A score for one PromptLayer request."""

    model_config = ConfigDict(extra="forbid")

    # run_id first: request_id's validator needs to see it (errors then name request_id).
    run_id: uuid.UUID | None = Field(
        default=None,
        description="The run_id of an answer whose promptlayer_request_id was null.",
    )
    request_id: StrictInt | None = Field(
        default=None,
        gt=0,
        le=2**63 - 1,  # PromptLayer's ids are BIGINTs
        validate_default=True,
        description="The promptlayer_request_id of the answer (or give run_id).",
    )
    score: StrictInt = Field(ge=0, le=100, description="0 (bad) to 100 (good).")
    name: str = Field(default="default", min_length=1, max_length=128)
    comment: str | None = Field(default=None, max_length=4000)
    feedback_token: str | None = Field(
        default=None, max_length=256, description="The token the response carried."
    )

    @field_validator("request_id")
    @classmethod
    def _one_id(cls, value: int | None, info: ValidationInfo) -> int | None:
        if (value is None) == (info.data.get("run_id") is None):
            raise ValueError("give exactly one of request_id and run_id")
        return value

    @field_validator("feedback_token")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # Tokens are issued as `<expiry>.<signature>` in printable ASCII; anything else
        # (control characters, other scripts' digits) cannot be one.
        if value is not None and not _PRINTABLE_ASCII.fullmatch(value):
            raise ValueError("feedback_token must be printable ASCII, as it was issued")
        return value

    def subject(self) -> str:
        """The token subject this feedback must be signed for."""
        if self.request_id is not None:
            return request_subject(self.request_id)
        return run_subject(str(self.run_id))


_PRINTABLE_ASCII = re.compile("[\x20-\x7e]*")

# A flat object: any nesting deeper than this is not a feedback body.
_MAX_BODY_DEPTH = 8


def body_problem(raw: bytes) -> dict[str, Any] | None:
    """Why a /feedback body is refused before FastAPI parses it (a FastAPI-style validation
    error), or None: not UTF-8 or not strict JSON (NaN, numbers past a double), nested
    deeper than a feedback body, or holding NUL or a lone surrogate, which PromptLayer
    cannot store and FastAPI's own error answer could not even quote."""
    # An empty body is left to FastAPI, which says the body is required.
    return json_codec.body_problem(raw, max_depth=_MAX_BODY_DEPTH,
                                   refused=json_codec.UNSTORABLE,
                                   what="NUL or unpaired surrogate characters")


class _StrictBodyRoute(APIRoute):
    """A route whose JSON body is checked with `body_problem` first (422 if refused)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            problem = body_problem(await request.body())  # cached for FastAPI's own parse
            if problem is not None:
                return JSONResponse({"detail": [problem]}, status_code=422)
            return await handler(request)

        return checked


class FeedbackOut(BaseModel):
    """What was recorded (or, with `pending`, kept until the run's log lands)."""

    request_id: int | None = None
    name: str
    score: int
    comment_recorded: bool
    run_id: str | None = None
    pending: bool = False


class Outcome(enum.Enum):
    """What became of waiting scores when they were tried."""

    APPLIED = "applied"
    KEPT = "kept"  # PromptLayer unavailable: still waiting, tried again later
    DROPPED = "dropped"  # PromptLayer refused them (unknown request): forgotten


class _Unavailable(Exception):
    """PromptLayer did not take the score in time: 5xx, 429, timeout, no connection, ..."""


class FeedbackService:
    """Checks who may score a request and records the score through the SDK.

    PromptLayer is given `call_seconds` to take a score (and its comment): the SDK on its own
    retries a 5xx for 14 s. A score it did not take in time is kept (`pending`, on disk) and
    answered 202; the retry loop applies it once PromptLayer answers again.
    """

    def __init__(
        self,
        *,
        tokens: FeedbackTokens,
        keys: KeyRing,
        client: AsyncPromptLayer,
        runs: RunLookup | None = None,
        pending: PendingFeedback | None = None,
        require_key: bool = False,
        call_seconds: float = CALL_SECONDS,
    ) -> None:
        """Tokens are checked with `tokens`; a key of `keys` stands in for a token.

        `runs` maps a run id to its request id once the log landed; `pending` keeps scores
        that cannot apply yet. With `require_key`, a key is always needed.
        """
        self.tokens = tokens
        self._keys = keys
        self.client = client
        self._runs = runs
        self.pending = pending
        self.require_key = require_key
        self._call_seconds = call_seconds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kept = asyncio.Event()  # set when a score is kept for an outage

    def has_service_key(self, presented: str | None) -> bool:
        """True when `presented` is one of the service API keys (constant-time compare)."""
        return self._keys.allows(presented)

    def authorize(self, feedback: FeedbackIn, presented_key: str | None) -> None:
        """Raise 401/403 unless the token (or a service key) covers this request."""
        if self.has_service_key(presented_key):
            return
        if self.require_key:
            raise HTTPException(401, "a valid API key is required", _CHALLENGE)
        if feedback.feedback_token is None:
            raise HTTPException(401, "feedback_token is required (or a service API key)")
        try:
            self.tokens.verify(feedback.feedback_token, feedback.subject())
        except ExpiredToken as error:
            raise HTTPException(401, str(error)) from None
        except InvalidToken as error:
            raise HTTPException(403, str(error)) from None

    async def submit(self, feedback: FeedbackIn) -> FeedbackOut:
        """Record a score by request id, or by run id (kept until its log lands).

        `pending` in the answer: kept, applied later (the log has not landed, or PromptLayer
        did not take the score in time).
        """
        run_id = None if feedback.run_id is None else str(feedback.run_id)
        request_id = feedback.request_id if run_id is None else self._lookup(run_id)
        if request_id is None:
            assert run_id is not None
            if self.pending is None:
                raise HTTPException(404, f"run {run_id} has no logged request here")
            await self.pending.add(_waiting(feedback, run_id, None))
            # The log may have landed while the score was being written: apply it now then.
            request_id = self._lookup(run_id)
            if request_id is None:
                return _out(feedback, run_id, None, pending=True)
            outcome = await self.apply_pending(run_id, request_id)
            if outcome is Outcome.DROPPED:
                raise HTTPException(404, f"request {request_id} is not known")
            return _out(feedback, run_id, request_id, pending=outcome is Outcome.KEPT)
        try:
            await self._send(request_id, feedback)
        except _Unavailable as error:
            if self.pending is None:
                detail = "PromptLayer did not take the score; retry later"
                raise HTTPException(503, detail) from None
            logger.info("feedback for request %s kept: PromptLayer unavailable (%s)",
                        request_id, error)
            await self.pending.add(_waiting(feedback, run_id, request_id))
            self._kept.set()
            return _out(feedback, run_id, request_id, pending=True)
        return _out(feedback, run_id, request_id)

    def _lookup(self, run_id: str) -> int | None:
        return self._runs(run_id) if self._runs is not None else None

    async def _send(self, request_id: int, feedback: FeedbackIn | PendingScore) -> None:
        """Give PromptLayer the score (and the comment, as metadata), within `call_seconds`.

        HTTPException 404 for an unknown request: the embedded backend answers 404, the hosted
        service 400. Every other field of these calls was checked before they were made
        (FeedbackIn, then the SDK's own checks), so a 400 can only be about the id. 400 when
        the score itself is refused (the SDK's checks, a 422). `_Unavailable` for the rest:
        5xx, 429, timeouts, refused connections, and 401/403 (PromptLayer refusing this
        service's key: the operator's to fix, after which the kept scores apply).
        """
        try:
            async with asyncio.timeout(self._call_seconds):
                await self.client.track.score(request_id, feedback.score, feedback.name)
                if feedback.comment:
                    key = f"feedback_comment:{feedback.name}"
                    await self.client.track.metadata(request_id, {key: feedback.comment})
        except (pl_errors.PromptLayerNotFoundError, pl_errors.PromptLayerBadRequestError):
            raise HTTPException(404, f"request {request_id} is not known") from None
        except (
            pl_errors.PromptLayerValidationError,
            pl_errors.PromptLayerUnprocessableEntityError,
        ) as error:
            raise HTTPException(400, str(error)) from None
        except (pl_errors.PromptLayerError, httpx.HTTPError, TimeoutError) as error:
            raise _Unavailable(type(error).__name__) from error

    # -- scores waiting for their log, or for PromptLayer ----------------------------------

    def on_landed(self, run_id: str, request_id: int) -> None:
        """Delivery listener: a run's log landed; apply the scores waiting for it."""
        if self.pending is not None and run_id in self.pending:
            task = asyncio.get_running_loop().create_task(self.apply_pending(run_id, request_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def apply_pending(self, key: str, request_id: int) -> Outcome:
        """Record the scores waiting under `key` (a run id, or `request:<id>`)."""
        if self.pending is None:
            return Outcome.APPLIED
        scores = self.pending.scores(key)
        try:
            for score in scores:
                await self._send(request_id, score)
        except _Unavailable as error:
            logger.info("feedback under %s: PromptLayer unavailable (%s), kept", key, error)
            # Kept with its request id: after a restart the run's may not be known any more.
            await self.pending.resolve(key, request_id)
            return Outcome.KEPT
        except HTTPException as error:
            logger.warning("feedback under %s dropped: %s", key, error.detail)
            await self.pending.done(key, scores)
            return Outcome.DROPPED
        await self.pending.done(key, scores)
        return Outcome.APPLIED

    async def retry_pending(self) -> bool:
        """Apply the waiting scores whose request id is known; drop those past the token
        lifetime. True when PromptLayer was unavailable (the round stops there)."""
        if self.pending is None:
            return False
        await self.pending.expire()
        for key in self.pending.waiting_keys():
            request_id = self._request_id_of(key)
            if request_id is not None and await self.apply_pending(key, request_id) \
                    is Outcome.KEPT:
                return True
        return False

    def _request_id_of(self, key: str) -> int | None:
        assert self.pending is not None
        for score in self.pending.scores(key):
            if score.request_id is not None:
                return score.request_id
        return self._lookup(key)  # a run id whose log has landed since

    async def retry_pending_forever(self, interval: float, *, soonest: float = 1.0) -> None:
        """Apply waiting scores: at once (those kept through a restart), then every
        `interval` s; while PromptLayer is unavailable, after `soonest` s, doubling up to
        `interval`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        backoff = 0.0  # 0: PromptLayer took the last round
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._kept.wait()
            except TimeoutError:
                failing = await self.retry_pending()
                backoff = (min(backoff * 2, interval) if backoff else soonest) if failing else 0.0
                deadline = loop.time() + (backoff or interval)
                continue
            # A score was just kept for an outage: try again soon, not a whole interval later.
            self._kept.clear()
            deadline = min(deadline, loop.time() + (backoff or soonest))


def _waiting(feedback: FeedbackIn, run_id: str | None, request_id: int | None) -> PendingScore:
    return PendingScore(
        run_id, feedback.name, feedback.score, feedback.comment, time.time(), request_id
    )


def _out(
    feedback: FeedbackIn, run_id: str | None, request_id: int | None, *, pending: bool = False
) -> FeedbackOut:
    return FeedbackOut(
        request_id=request_id,
        name=feedback.name,
        score=feedback.score,
        comment_recorded=bool(feedback.comment),
        run_id=run_id,
        pending=pending,
    )


def _service(request: Request) -> FeedbackService:
    service: FeedbackService = request.app.state.feedback
    return service


def _presented_key(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="`Bearer <service API key>`")
    ] = None,
    x_api_key: Annotated[str | None, Header(description="A service API key.")] = None,
) -> str | None:
    # The two headers are declared for the schema only: app.keys reads them, as every key.
    del authorization, x_api_key
    return presented_key(request)


router = APIRouter(tags=["feedback"], route_class=_StrictBodyRoute)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    response_model_exclude_defaults=True,
    responses={202: {"model": FeedbackOut}, 401: {}, 403: {}, 404: {}, 503: {}},
)
async def submit_feedback(
    feedback: FeedbackIn,
    service: Annotated[FeedbackService, Depends(_service)],
    presented: Annotated[str | None, Depends(_presented_key)],
) -> Any:
    """Score a logged answer 0..100; the same (request, name) scored again keeps the last.

    By `run_id` (for an answer whose request id was null) the score is kept and answered
    202 until the run's log lands, then applied. When PromptLayer does not take a score
    within a second (an outage), it is kept the same way and answered 202.
    """
    try:
        service.authorize(feedback, presented)
        out = await service.submit(feedback)
    except HTTPException as error:
        count_feedback(_OUTCOMES.get(error.status_code, "rejected"))
        raise
    if out.pending:
        count_feedback("pending")
        return JSONResponse(out.model_dump(exclude_defaults=True) | {"pending": True}, 202)
    count_feedback("recorded")
    return out


# /feedback status → the `outcome` label of promptserve_feedback_total.
_OUTCOMES = {404: "unknown_request", 503: "failed"}
