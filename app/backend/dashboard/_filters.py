"""Filters of the request list, parsed from query parameters (the page's and the API's alike)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from app.backend.errors import BadRequest

__all__ = ["STATUSES", "RequestFilters", "parse_filters"]

STATUSES = ("SUCCESS", "WARNING", "ERROR")
_MAX_TEXT = 200
_MAX_TAGS = 8
_MAX_ID = 2**62


@dataclass(frozen=True, slots=True)
class RequestFilters:
    """What the request list is narrowed to; every field optional."""

    tags: tuple[str, ...] = ()
    route: str | None = None
    endpoint: str | None = None
    chain: str | None = None
    prompt: str | None = None
    version: int | None = None
    status: str | None = None
    score_name: str | None = None
    score_min: int | None = None
    score_max: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50

    def all_tags(self) -> list[str]:
        """Explicit tags plus those that route, endpoint and chain stand for."""
        tags = list(self.tags)
        for prefix in ("route", "endpoint", "chain"):
            value = getattr(self, prefix)
            if value:
                tags.append(f"{prefix}:{value}")
        return list(dict.fromkeys(tags))

    def has_score_filter(self) -> bool:
        """Whether a score range (or a score name) narrows the list."""
        return self.score_min is not None or self.score_max is not None or bool(self.score_name)

    def as_params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query parameters that reproduce these filters (with `changes`); for links."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        params: list[tuple[str, str]] = [("tag", t) for t in values.pop("tags")]
        if values["limit"] == 50:
            values.pop("limit")
        for name, value in values.items():
            if value is None or value == "":
                continue
            if isinstance(value, datetime):
                value = value.isoformat(timespec="minutes")
            params.append((name, str(value)))
        return params

    def active(self) -> bool:
        """Whether anything but paging narrows the list."""
        return bool(self.as_params(before=None, after=None, limit=50))


def _text(params: QueryParams, name: str) -> str | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if len(value) > _MAX_TEXT or "\x00" in value:
        raise BadRequest(f"{name}: at most {_MAX_TEXT} characters, no NUL")
    return value


def _int(params: QueryParams, name: str, low: int, high: int) -> int | None:
    value = _text(params, name)
    if value is None:
        return None
    if not (value.isascii() and value.lstrip("-").isdigit()) or len(value) > 19:
        raise BadRequest(f"{name}: not an integer: {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}")
    return number


def _time(params: QueryParams, name: str) -> datetime | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: not an ISO date or date-time: {value!r}") from None
    # The store keeps naive UTC; a zone-less value is taken as UTC too.
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_filters(params: QueryParams) -> RequestFilters:
    """RequestFilters from query parameters; BadRequest names the offending one."""
    tags = tuple(dict.fromkeys(t.strip() for t in params.getlist("tag") if t.strip()))
    if len(tags) > _MAX_TAGS or any(len(t) > 512 or "\x00" in t for t in tags):
        raise BadRequest(f"tag: at most {_MAX_TAGS} tags of at most 512 characters")
    status = _text(params, "status")
    if status is not None:
        status = status.upper()
        if status not in STATUSES:
            raise BadRequest(f"status: one of {', '.join(STATUSES)}")
    filters = RequestFilters(
        tags=tags,
        route=_text(params, "route"),
        endpoint=_text(params, "endpoint"),
        chain=_text(params, "chain"),
        prompt=_text(params, "prompt"),
        version=_int(params, "version", 1, 2**31 - 1),
        status=status,
        score_name=_text(params, "score_name"),
        score_min=_int(params, "score_min", 0, 100),
        score_max=_int(params, "score_max", 0, 100),
        since=_time(params, "since"),
        until=_time(params, "until"),
        q=_text(params, "q"),
        before=_int(params, "before", 1, _MAX_ID),
        after=_int(params, "after", 1, _MAX_ID),
        limit=_int(params, "limit", 1, 200) or 50,
    )
    if filters.version is not None and filters.prompt is None:
        raise BadRequest("version: needs prompt (a version number belongs to a prompt)")
    if filters.before is not None and filters.after is not None:
        raise BadRequest("before and after: give one of them")
    return filters
