"""`POST /feedback`: a user's score for one logged answer, checked and passed to PromptLayer."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from promptlayer import exceptions as pl_errors
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from app.feedback._pending import PendingFeedback, PendingScore
from app.observability.metrics import count_feedback
from promptserve.server._tokens import ExpiredToken, InvalidToken, request_subject, run_subject

if TYPE_CHECKING:
    from promptlayer import AsyncPromptLayer
    from pydantic import SecretStr

    from promptserve.server._tokens import FeedbackTokens

__all__ = ["FeedbackIn", "FeedbackOut", "FeedbackService", "router"]

logger = logging.getLogger(__name__)

RunLookup = Callable[[str], "int | None"]


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

    def subject(self) -> str:
        """The token subject this feedback must be signed for."""
        if self.request_id is not None:
            return request_subject(self.request_id)
        return run_subject(str(self.run_id))


class FeedbackOut(BaseModel):
    """What was recorded (or, with `pending`, kept until the run's log lands)."""

    request_id: int | None = None
    name: str
    score: int
    comment_recorded: bool
    run_id: str | None = None
    pending: bool = False


class FeedbackService:
    """Checks who may score a request and records the score through the SDK."""

    def __init__(
        self,
        *,
        tokens: FeedbackTokens,
        api_keys: list[SecretStr],
        client: AsyncPromptLayer,
        runs: RunLookup | None = None,
        pending: PendingFeedback | None = None,
        require_key: bool = False,
    ) -> None:
        """Tokens are checked with `tokens`; any of `api_keys` stands in for a token.

        `runs` maps a run id to its request id once the log landed; `pending` keeps scores
        for runs whose log has not landed yet. With `require_key`, a key is always needed.
        """
        self.tokens = tokens
        self._api_keys = [key.get_secret_value().encode() for key in api_keys]
        self.client = client
        self._runs = runs
        self.pending = pending
        self.require_key = require_key
        self._tasks: set[asyncio.Task[Any]] = set()

    def has_service_key(self, presented: str | None) -> bool:
        """True when `presented` is one of the service API keys (constant-time compare)."""
        if not presented:
            return False
        candidate = presented.encode()
        return any(hmac.compare_digest(candidate, key) for key in self._api_keys)

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
        """Record a score by request id, or by run id (kept until its log lands)."""
        if feedback.run_id is None:
            assert feedback.request_id is not None
            return await self.record(feedback.request_id, feedback)
        run_id = str(feedback.run_id)
        request_id = self._lookup(run_id)
        if request_id is None and self.pending is not None:
            score = PendingScore(
                run_id, feedback.name, feedback.score, feedback.comment, time.time()
            )
            await self.pending.add(score)
            # The log may have landed while the score was being written: apply it now then.
            request_id = self._lookup(run_id)
            if request_id is None:
                return FeedbackOut(
                    name=feedback.name,
                    score=feedback.score,
                    run_id=run_id,
                    comment_recorded=bool(feedback.comment),
                    pending=True,
                )
            await self.apply_pending(run_id, request_id)
            return FeedbackOut(
                request_id=request_id,
                name=feedback.name,
                run_id=run_id,
                score=feedback.score,
                comment_recorded=bool(feedback.comment),
            )
        if request_id is None:
            raise HTTPException(404, f"run {run_id} has no logged request here")
        out = await self.record(request_id, feedback)
        return out.model_copy(update={"run_id": run_id})

    def _lookup(self, run_id: str) -> int | None:
        return self._runs(run_id) if self._runs is not None else None

    async def record(self, request_id: int, feedback: FeedbackIn | PendingScore) -> FeedbackOut:
        """Send the score (and the comment, as metadata) to PromptLayer."""
        try:
            await self.client.track.score(request_id, feedback.score, feedback.name)
            if feedback.comment:
                key = f"feedback_comment:{feedback.name}"
                await self.client.track.metadata(request_id, {key: feedback.comment})
        except pl_errors.PromptLayerNotFoundError:
            raise HTTPException(404, f"request {request_id} is not known") from None
        except pl_errors.PromptLayerBadRequestError as error:
            raise HTTPException(400, str(error)) from None
        except pl_errors.PromptLayerError as error:
            raise HTTPException(503, "PromptLayer did not take the score; retry later") from error
        return FeedbackOut(
            request_id=request_id,
            name=feedback.name,
            score=feedback.score,
            comment_recorded=bool(feedback.comment),
        )

    # -- scores waiting for their log ------------------------------------------------------

    def on_landed(self, run_id: str, request_id: int) -> None:
        """Delivery listener: a run's log landed; apply the scores waiting for it."""
        if self.pending is not None and run_id in self.pending:
            task = asyncio.get_running_loop().create_task(self.apply_pending(run_id, request_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def apply_pending(self, run_id: str, request_id: int) -> bool:
        """Record the scores waiting for `run_id`; False (kept for later) if that failed."""
        if self.pending is None:
            return True
        scores = self.pending.scores(run_id)
        try:
            for score in scores:
                await self.record(request_id, score)
        except HTTPException as error:
            if error.status_code == 503:
                logger.info("feedback for run %s: PromptLayer unavailable, kept", run_id)
                return False
            logger.warning("feedback for run %s dropped: %s", run_id, error.detail)
        await self.pending.done(run_id, scores)
        return True

    async def retry_pending_forever(self, interval: float) -> None:
        """Every `interval` s, apply waiting scores whose run's request id is now known."""
        while True:
            await asyncio.sleep(interval)
            if self.pending is None:
                continue
            for run_id in self.pending.run_ids():
                request_id = self._lookup(run_id)
                if request_id is not None:
                    await self.apply_pending(run_id, request_id)


def _service(request: Request) -> FeedbackService:
    service: FeedbackService = request.app.state.feedback
    return service


def _presented_key(
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


router = APIRouter(tags=["feedback"])

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
    presented_key: Annotated[str | None, Depends(_presented_key)],
) -> Any:
    """Score a logged answer 0..100; the same (request, name) scored again keeps the last.

    By `run_id` (for an answer whose request id was null) the score is kept and answered
    202 until the run's log lands, then applied.
    """
    try:
        service.authorize(feedback, presented_key)
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
