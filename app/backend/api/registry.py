"""Prompt registry routes: get (rendered on request), list, publish (docs/PROMPTLAYER_API.md §1).

A get by a split label resolves by the split's weights at random per call, the segment from
`metadata_filters` (docs/RELEASES.md), as the hosted service resolves its A/B labels; a
publish that moves labels writes a history row per move, by the key that published.
"""

from __future__ import annotations

import math
import random
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.backend.api._http import (
    authenticated_body,
    check_header_key,
    check_text,
    key_ring_of,
    store_of,
    utcnow,
    validate,
)
from app.backend.api.schemas import GetTemplateBody, PublishBody
from app.backend.blueprint import BlueprintError, build_llm_kwargs, validate_blueprint
from app.backend.errors import BadRequest
from app.backend.rendering import complete_input_variables, render_blueprint
from app.backend.store.registry import (
    TemplateVersion,
    get_version,
    list_versions,
    publish_version,
)
from app.keys import presented_key
from app.releases.service import who

__all__ = ["router", "template_response"]

router = APIRouter()

# Split labels draw per call; the draw needs no secrecy, only independence.
_draws = random.Random()


def _actor(request: Request, body: dict[str, Any]) -> str:
    """The history's `by` for a publish: the key accepted, the client that says it sent."""
    key = presented_key(request, bearer=False)
    if not key_ring_of(request).allows(key) and isinstance(body.get("api_key"), str):
        key = body["api_key"]
    return who(key, request.headers.get("x-promptserve-client"))


def template_response(
    found: TemplateVersion,
    *,
    variables: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The get/list item shape; renders when `variables` is given."""
    blueprint = found.prompt_template
    if variables is not None:
        blueprint = render_blueprint(blueprint, variables)
    llm_kwargs = build_llm_kwargs(blueprint, found.metadata)
    if llm_kwargs is not None and overrides:
        llm_kwargs.update(overrides)
    return {
        "id": found.template_id,
        "prompt_name": found.name,
        "version": found.version,
        "prompt_version_id": found.version_id,
        "prompt_template": blueprint,
        "metadata": found.metadata,
        "commit_message": found.commit_message,
        "tags": found.tags,
        "release_labels": found.release_labels,
        "llm_kwargs": llm_kwargs,
        "created_at": found.created_at.isoformat() + "Z",
    }


@router.post("/prompt-templates/{identifier:path}")
async def get_template(identifier: str, request: Request) -> JSONResponse:
    """One template version: latest, by `version`, or by `label` (label wins)."""
    raw = await authenticated_body(request)
    body = validate(GetTemplateBody, raw)
    check_text(identifier, "prompt template identifier")
    filters = raw.get("metadata_filters")
    draw = _draws.randrange(100) if body.label is not None else None
    found = await store_of(request).read(
        lambda c: get_version(
            c,
            identifier=identifier,
            version=body.version,
            label=body.label,
            split_draw=draw,
            metadata_filters=filters if isinstance(filters, dict) else None,
        )
    )
    render = body.input_variables is not None and not body.skip_input_variable_rendering
    return JSONResponse(
        template_response(
            found,
            variables=body.input_variables if render else None,
            overrides=body.model_parameter_overrides,
        )
    )


@router.get("/prompt-templates")
async def list_templates(
    request: Request,
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(30, ge=1, le=1000),
    label: str | None = None,
    name: str | None = None,
) -> JSONResponse:
    """A page of templates, newest first (latest version each, or the labeled one)."""
    check_header_key(request)
    check_text(label, "label")
    check_text(name, "name")
    items, total = await store_of(request).read(
        lambda c: list_versions(c, page=page, per_page=per_page, label=label or None, name=name)
    )
    pages = math.ceil(total / per_page) if total else 0
    return JSONResponse(
        {
            "items": [template_response(item) for item in items],
            "page": page,
            "per_page": per_page,
            "pages": pages,
            "total": total,
            "has_next": page < pages,
            "has_prev": page > 1,
            "next_num": page + 1 if page < pages else None,
            "prev_num": page - 1 if page > 1 else None,
        }
    )


@router.post("/rest/prompt-templates", status_code=201)
async def publish(request: Request) -> JSONResponse:
    """Append a version (creating the template if new) and move its release labels."""
    raw = await authenticated_body(request)
    body = validate(PublishBody, raw)
    by = _actor(request, raw)
    head, version = body.prompt_template, body.prompt_version
    # The contract reads the version's fields from prompt_version; fall back to the template
    # part for callers that send a single object.
    blueprint = version.prompt_template if version and version.prompt_template else None
    blueprint = blueprint or head.prompt_template
    if blueprint is None:
        raise BadRequest("prompt_version.prompt_template is required")
    try:
        validate_blueprint(blueprint, where="prompt_version.prompt_template")
    except BlueprintError as exc:
        raise BadRequest(str(exc)) from exc
    commit_message = version.commit_message if version else None
    commit_message = commit_message if commit_message is not None else head.commit_message
    if commit_message is not None and len(commit_message) > 72:
        raise BadRequest("prompt_version.commit_message must be at most 72 characters")
    metadata = (version.metadata if version else None) or head.metadata or {}
    if "model" in metadata and not isinstance(metadata["model"], dict | None):
        raise BadRequest("prompt_version.metadata.model must be an object")
    labels = body.release_labels
    if labels is None:
        labels = (version.release_labels if version else None) or head.release_labels or []
    completed = complete_input_variables(blueprint)
    stored = await store_of(request).write(
        lambda c: publish_version(
            c,
            name=head.prompt_name,
            tags=head.tags,
            prompt_template=completed,
            metadata=metadata,
            commit_message=commit_message,
            release_labels=labels,
            now=utcnow(),
            by=by,
        )
    )
    return JSONResponse(
        {
            "id": stored.template_id,
            "prompt_name": stored.name,
            "prompt_version_id": stored.version_id,
            "version_number": stored.version,
            "tags": stored.tags,
            "release_labels": stored.release_labels,
            "prompt_template": stored.prompt_template,
            "metadata": stored.metadata,
            "commit_message": stored.commit_message,
        },
        status_code=201,
    )
