"""`POST /feedback`: a user's score for one logged answer, checked and passed to PromptLayer."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from promptlayer import exceptions as pl_errors
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.feedback._tokens import ExpiredToken, InvalidToken, request_subject
from app.observability.metrics import count_feedback

if TYPE_CHECKING:
    from promptlayer import AsyncPromptLayer
    from pydantic import SecretStr

    from app.feedback._tokens import FeedbackTokens

__all__ = ["FeedbackIn", "FeedbackOut", "FeedbackService", "router"]


class FeedbackIn(BaseModel):
    """A score for one PromptLayer request."""

    model_config = ConfigDict(extra="forbid")

    request_id: StrictInt = Field(gt=0, description="The promptlayer_request_id of the answer.")
    score: StrictInt = Field(ge=0, le=100, description="0 (bad) to 100 (good).")
    name: str = Field(default="default", min_length=1, max_length=128)
    comment: str | None = Field(default=None, max_length=4000)
    feedback_token: str | None = Field(
        default=None, max_length=256, description="The token the response carried."
    )


class FeedbackOut(BaseModel):
    """What was recorded."""

    request_id: int
    name: str
    score: int
    comment_recorded: bool


class FeedbackService:
    """Checks who may score a request and records the score through the SDK."""

    def __init__(
        self, *, tokens: FeedbackTokens, api_keys: list[SecretStr], client: AsyncPromptLayer
    ) -> None:
        """Tokens are checked with `tokens`; any of `api_keys` stands in for a token."""
        self.tokens = tokens
        self._api_keys = [key.get_secret_value().encode() for key in api_keys]
        self.client = client

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
        if feedback.feedback_token is None:
            raise HTTPException(401, "feedback_token is required (or a service API key)")
        try:
            self.tokens.verify(feedback.feedback_token, request_subject(feedback.request_id))
        except ExpiredToken as error:
            raise HTTPException(401, str(error)) from None
        except InvalidToken as error:
            raise HTTPException(403, str(error)) from None

    async def record(self, feedback: FeedbackIn) -> FeedbackOut:
        """Send the score (and the comment, as metadata) to PromptLayer."""
        try:
            await self.client.track.score(feedback.request_id, feedback.score, feedback.name)
            if feedback.comment:
                key = f"feedback_comment:{feedback.name}"
                await self.client.track.metadata(feedback.request_id, {key: feedback.comment})
        except pl_errors.PromptLayerNotFoundError:
            raise HTTPException(404, f"request {feedback.request_id} is not known") from None
        except pl_errors.PromptLayerBadRequestError as error:
            raise HTTPException(400, str(error)) from None
        except pl_errors.PromptLayerError as error:
            raise HTTPException(503, "PromptLayer did not take the score; retry later") from error
        return FeedbackOut(
            request_id=feedback.request_id,
            name=feedback.name,
            score=feedback.score,
            comment_recorded=bool(feedback.comment),
        )


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


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    responses={401: {}, 403: {}, 404: {}, 503: {}},
)
async def submit_feedback(
    feedback: FeedbackIn,
    service: Annotated[FeedbackService, Depends(_service)],
    presented_key: Annotated[str | None, Depends(_presented_key)],
) -> Any:
    """Score a logged answer 0..100; the same (request, name) scored again keeps the last."""
    try:
        service.authorize(feedback, presented_key)
        result = await service.record(feedback)
    except HTTPException as error:
        count_feedback(_OUTCOMES.get(error.status_code, "rejected"))
        raise
    count_feedback("recorded")
    return result


# /feedback status → the `outcome` label of promptserve_feedback_total.
_OUTCOMES = {404: "unknown_request", 503: "failed"}
