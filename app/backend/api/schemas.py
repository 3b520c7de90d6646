"""Request bodies of the PromptLayer API (docs/PROMPTLAYER_API.md §1–3), validated
strictly.

Strict mode: a string is not a number and `true` is not an int. Two deliberate leniencies:
ids accept digit strings (the SDK's async paths send whatever the caller passed), and fields
the SDK sends as explicit `null` fall back to their defaults.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

__all__ = [
    "MAX_LOG_BATCH",
    "GetTemplateBody",
    "LogRequestBatchBody",
    "LogRequestBody",
    "PublishBody",
    "TrackGroupBody",
    "TrackMetadataBody",
    "TrackPromptBody",
    "TrackRequestBody",
    "TrackScoreBody",
]


def _to_id(value: Any) -> Any:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value


def _to_utc(value: Any) -> Any:
    """Epoch seconds (int/float) or ISO-8601 text → naive UTC datetime; else left to fail."""
    if isinstance(value, bool):
        raise ValueError("must be epoch seconds or an ISO-8601 string")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of epoch seconds")
        try:
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("epoch seconds out of range") from exc
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be epoch seconds or an ISO-8601 string") from exc
        if parsed.tzinfo is not None:  # naive input is taken as UTC already
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    raise ValueError("must be epoch seconds or an ISO-8601 string")


def _null_to(default: Any) -> BeforeValidator:
    return BeforeValidator(lambda v: default() if v is None else v)


# Column limits: INTEGER and BIGINT on PostgreSQL; larger values would fail there, not here.
_INT32 = 2**31 - 1
Id = Annotated[int, BeforeValidator(_to_id), Field(ge=1, le=2**63 - 1)]
Score = Annotated[int, Field(ge=0, le=100)]
Timestamp = Annotated[datetime, BeforeValidator(_to_utc)]
Tag = Annotated[str, StringConstraints(max_length=512)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=512)]
ScoreName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Json = dict[str, Any]
JsonObj = Annotated[Json, _null_to(dict)]
StrMap = Annotated[dict[str, str], _null_to(dict)]
Tags = Annotated[list[Tag], _null_to(list)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class GetTemplateBody(_Body):
    """POST /prompt-templates/{identifier}."""

    version: Annotated[int, Field(ge=1, le=_INT32)] | None = None
    label: Label | None = None
    provider: str | None = None
    model: str | None = None
    input_variables: Json | None = None
    model_parameter_overrides: Json | None = None
    skip_input_variable_rendering: bool | None = None


class PublishTemplatePart(BaseModel):
    """`prompt_template` of a publish body: the template-level fields."""

    model_config = ConfigDict(strict=True, extra="ignore")

    prompt_name: Name
    tags: Tags = []
    # Older callers put the blueprint here too; used when prompt_version lacks it.
    prompt_template: Json | None = None
    commit_message: str | None = None
    metadata: Json | None = None
    release_labels: list[Label] | None = None


class PublishVersionPart(BaseModel):
    """`prompt_version` of a publish body: the version-level fields."""

    model_config = ConfigDict(strict=True, extra="ignore")

    prompt_template: Json | None = None
    commit_message: Annotated[str, StringConstraints(max_length=72)] | None = None
    metadata: Json | None = None
    release_labels: list[Label] | None = None


class PublishBody(_Body):
    """POST /rest/prompt-templates."""

    prompt_template: PublishTemplatePart
    prompt_version: PublishVersionPart | None = None
    release_labels: list[Label] | None = None


class LogRequestBody(_Body):
    """POST /log-request, after `checked_log` (app.backend.api.requests) has cut it to the
    hosted LogRequest schema: what is left over to refuse here is what no store can hold
    (values past the columns' ranges, empty provider or model, unreadable times)."""

    provider: Annotated[str, StringConstraints(min_length=1)]
    model: Annotated[str, StringConstraints(min_length=1)]
    input: Json
    output: Json
    request_start_time: Timestamp
    request_end_time: Timestamp
    parameters: JsonObj = {}
    tags: Tags = []
    metadata: StrMap = {}
    prompt_name: str | None = None
    prompt_id: Id | None = None
    prompt_version_number: Annotated[int, Field(ge=1, le=_INT32)] | None = None
    prompt_input_variables: JsonObj = {}
    input_tokens: Annotated[int, Field(ge=0, le=_INT32), _null_to(int)] = 0
    output_tokens: Annotated[int, Field(ge=0, le=_INT32), _null_to(int)] = 0
    price: Annotated[float, Field(ge=0, allow_inf_nan=False), _null_to(float)] = 0.0
    function_name: Annotated[str, _null_to(str)] = ""
    score: Annotated[Score, _null_to(int)] = 0
    score_name: ScoreName | None = None
    api_type: str | None = None
    status: Annotated[Literal["SUCCESS", "WARNING", "ERROR"], _null_to(lambda: "SUCCESS")] = (
        "SUCCESS"
    )
    error_type: str | None = None
    error_message: str | None = None


MAX_LOG_BATCH = 1000


class LogBatchEntry(_Body):
    """One log of a batch: a /log-request body and the Idempotency-Key it would carry."""

    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    # Validated as a LogRequestBody on its own, so one bad log never refuses the others.
    body: dict[str, Any]


class LogRequestBatchBody(_Body):
    """POST /log-request/batch (our extension): many logs in one call."""

    requests: Annotated[list[LogBatchEntry], Field(max_length=MAX_LOG_BATCH)]


class TrackRequestBody(_Body):
    """POST /track-request (legacy; pl.run and provider wrappers)."""

    function_name: Annotated[str, _null_to(str)] = ""
    provider_type: Annotated[str, _null_to(lambda: "openai")] = "openai"
    args: Annotated[list[Any], _null_to(list)] = []
    kwargs: JsonObj = {}
    request_response: Any = None
    request_start_time: Timestamp
    request_end_time: Timestamp
    tags: Tags = []
    metadata: StrMap = {}
    prompt_id: Id | None = None
    prompt_version: Annotated[int, Field(ge=1, le=_INT32)] | None = None
    prompt_input_variables: JsonObj = {}
    group_id: Id | None = None
    return_prompt_blueprint: bool | None = None
    status: Annotated[Literal["SUCCESS", "WARNING", "ERROR"], _null_to(lambda: "SUCCESS")] = (
        "SUCCESS"
    )
    error_type: str | None = None
    error_message: str | None = None
    api_type: str | None = None


class TrackScoreBody(_Body):
    """POST /library-track-score."""

    request_id: Id
    score: Score
    name: ScoreName | None = None


class TrackMetadataBody(_Body):
    """POST /library-track-metadata."""

    request_id: Id
    metadata: dict[str, str]


class TrackPromptBody(_Body):
    """POST /library-track-prompt."""

    request_id: Id
    prompt_name: Name
    prompt_input_variables: JsonObj = {}
    version: Annotated[int, Field(ge=1, le=_INT32)] | None = None
    label: Label | None = None


class TrackGroupBody(_Body):
    """POST /track-group."""

    request_id: Id
    group_id: Id
