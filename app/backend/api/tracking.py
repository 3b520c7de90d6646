"""Tracking routes: score, metadata, prompt link, groups (contract §3); both spellings each.

A stored score pokes the release guardrail (`app.state.guardrails`, when the backend runs
one), which judges guarded splits soon after, off the score's own request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.backend.api._http import authenticated_body, store_of, utcnow, validate
from app.backend.api.schemas import (
    TrackGroupBody,
    TrackMetadataBody,
    TrackPromptBody,
    TrackScoreBody,
)
from app.backend.store.requests import (
    create_group,
    link_group,
    link_prompt,
    merge_metadata,
    upsert_score,
)

__all__ = ["router"]

router = APIRouter()


def _ok(message: str) -> JSONResponse:
    return JSONResponse({"success": True, "message": message})


@router.post("/library-track-score")
@router.post("/rest/track-score")
async def track_score(request: Request) -> JSONResponse:
    """Set a named score (0–100) of a request; the same name again overwrites."""
    body = validate(TrackScoreBody, await authenticated_body(request))
    name = body.name or "default"
    await store_of(request).write(
        lambda c: upsert_score(
            c, request_id=body.request_id, name=name, score=body.score, now=utcnow()
        )
    )
    guardrails = getattr(request.app.state, "guardrails", None)
    if guardrails is not None:
        guardrails.poke()
    return _ok("score tracked")


@router.post("/library-track-metadata")
@router.post("/rest/track-metadata")
async def track_metadata(request: Request) -> JSONResponse:
    """Merge str→str metadata into a request's metadata."""
    body = validate(TrackMetadataBody, await authenticated_body(request))
    await store_of(request).write(
        lambda c: merge_metadata(c, request_id=body.request_id, metadata=body.metadata)
    )
    return _ok("metadata tracked")


@router.post("/library-track-prompt")
@router.post("/rest/track-prompt")
async def track_prompt(request: Request) -> JSONResponse:
    """Link a request to a template version (by label, version, or the latest)."""
    body = validate(TrackPromptBody, await authenticated_body(request))
    await store_of(request).write(
        lambda c: link_prompt(
            c,
            request_id=body.request_id,
            prompt_name=body.prompt_name,
            version=body.version,
            label=body.label,
            input_variables=body.prompt_input_variables,
        )
    )
    return _ok("prompt tracked")


@router.post("/create-group")
@router.post("/rest/create-group")
async def create_group_route(request: Request) -> JSONResponse:
    """A new group; its id."""
    await authenticated_body(request)
    group_id = await store_of(request).write(lambda c: create_group(c, now=utcnow()))
    return JSONResponse({"success": True, "id": group_id})


@router.post("/track-group")
@router.post("/rest/track-group")
async def track_group(request: Request) -> JSONResponse:
    """Put a request into a group."""
    body = validate(TrackGroupBody, await authenticated_body(request))
    await store_of(request).write(
        lambda c: link_group(c, request_id=body.request_id, group_id=body.group_id)
    )
    return _ok("group tracked")
