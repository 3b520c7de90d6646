"""Release routes: the JSON API of A/B releases (docs/RELEASES.md) and the hosted label
endpoints, both thin over `app.releases.service`.

Template names (and labels) may hold '/', so a release path is read from the raw request
path: each part percent-encoded (as the CLI sends it) is one part, and an unencoded path
takes its last part as the label (before the action, if any) and the rest as the template.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.backend.api._http import authenticated_body, check_header_key, key_ring_of, store_of
from app.backend.errors import BadRequest, NotFound
from app.keys import presented_key
from app.releases import service

__all__ = ["router"]

router = APIRouter()

_PREFIX = b"/rest/releases/"
_ACTIONS = {"GET": ("judgement",), "POST": ("promote", "rollback")}
_MAX_ID = 2**63 - 1
_MAX_VERSION = 2**31 - 1


def _parts(request: Request) -> tuple[str, str, str | None]:
    """(template, label, action) of a release path; NotFound when it names none."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    raw = raw.split(b"?", 1)[0]
    start = raw.find(_PREFIX)
    try:
        segments = [
            unquote_to_bytes(part).decode("utf-8")
            for part in raw[start + len(_PREFIX) :].split(b"/")
        ]
    except UnicodeDecodeError as exc:
        raise BadRequest("template and label must be percent-encoded UTF-8") from exc
    action: str | None = None
    if len(segments) >= 3 and segments[-1] in _ACTIONS.get(request.method, ()):
        action = segments.pop()
    if len(segments) < 2 or not all(segments):
        raise NotFound("not found: use /rest/releases/{template}/{label}")
    if any("\x00" in part for part in segments):
        raise BadRequest("template and label must not contain NUL characters")
    return "/".join(segments[:-1]), segments[-1], action


def _actor(request: Request, body: dict[str, Any] | None = None) -> str:
    """`by` for the history: the key that was accepted, and the client that says it sent."""
    key = presented_key(request, bearer=False)
    if not key_ring_of(request).allows(key) and body is not None:
        key = body.get("api_key") if isinstance(body.get("api_key"), str) else key
    return service.who(key, request.headers.get("x-promptserve-client"))


def _wrong_action(action: str | None) -> NotFound:
    return NotFound(f"no release action {action!r} with this method")


@router.get("/rest/releases")
async def list_releases(request: Request) -> JSONResponse:
    """The splits in force."""
    check_header_key(request)
    return JSONResponse({"releases": await service.list_releases(store_of(request))})


@router.get("/rest/releases/{rest:path}")
async def read_release(request: Request, rest: str) -> JSONResponse:
    """A label's split, version and history; or, with `/judgement`, its split judged."""
    check_header_key(request)
    template, label, action = _parts(request)
    store = store_of(request)
    if action == "judgement":
        return JSONResponse(await service.judgement(store, template, label))
    return JSONResponse(await service.get_release(store, template, label))


@router.put("/rest/releases/{rest:path}")
async def put_release(request: Request, rest: str) -> JSONResponse:
    """Start or change the split."""
    body = await authenticated_body(request)
    template, label, action = _parts(request)
    if action is not None:
        raise _wrong_action(action)
    split = await service.set_split(store_of(request), template, label, body, _actor(request, body))
    return JSONResponse(split)


@router.post("/rest/releases/{rest:path}")
async def act_on_release(request: Request, rest: str) -> JSONResponse:
    """`/promote` (body `{"version"?}`) or `/rollback`; both end the split."""
    body = await authenticated_body(request)
    template, label, action = _parts(request)
    store, by = store_of(request), _actor(request, body)
    if action == "promote":
        unknown = sorted(set(body) - {"version", "api_key"})
        if unknown:
            raise BadRequest(f"{unknown[0]}: unknown field (promote takes version)")
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise BadRequest("version: must be an integer version number")
        return JSONResponse(await service.promote(store, template, label, version, by))
    if action == "rollback":
        return JSONResponse(await service.rollback(store, template, label, by))
    raise _wrong_action(action)


@router.delete("/rest/releases/{rest:path}")
async def end_release(request: Request, rest: str) -> JSONResponse:
    """End the split; the label stays on the control."""
    body = await authenticated_body(request)
    template, label, action = _parts(request)
    if action is not None:
        raise _wrong_action(action)
    return JSONResponse(
        await service.end_split(store_of(request), template, label, _actor(request, body))
    )


# ---------------------------------------------------------------- hosted label endpoints


def _path_id(value: str, what: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= _MAX_ID:
        raise BadRequest(f"{what}: must be a positive integer id")
    return int(value)


def _version_number(body: dict[str, Any]) -> int:
    value = body.get("prompt_version_number")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest("prompt_version_number: required, an integer version number")
    if not 1 <= value <= _MAX_VERSION:
        raise BadRequest(f"prompt_version_number: must lie from 1 to {_MAX_VERSION}")
    return value


@router.get("/prompt-templates/{identifier:path}/labels")
async def list_labels(request: Request, identifier: str) -> JSONResponse:
    """The template's release labels, as the hosted service lists them."""
    check_header_key(request)
    if "\x00" in identifier:
        raise BadRequest("prompt template identifier must not contain NUL characters")
    return JSONResponse(await service.list_labels(store_of(request), identifier))


@router.post("/prompts/{prompt_id}/label")
async def create_label(request: Request, prompt_id: str) -> JSONResponse:
    """A new label on a version of the prompt."""
    body = await authenticated_body(request)
    template_id = _path_id(prompt_id, "prompt_id")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 512:
        raise BadRequest("name: required, a label of 1 to 512 characters")
    answer = await service.create_label(
        store_of(request), template_id, name, _version_number(body), _actor(request, body)
    )
    return JSONResponse(answer)


@router.patch("/prompt-labels/{label_id}")
async def move_label(request: Request, label_id: str) -> JSONResponse:
    """Move a label to another version of its prompt."""
    body = await authenticated_body(request)
    answer = await service.move_label(
        store_of(request),
        _path_id(label_id, "prompt_label_id"),
        _version_number(body),
        _actor(request, body),
    )
    return JSONResponse(answer)


@router.delete("/prompt-labels/{label_id}", status_code=204)
async def delete_label(request: Request, label_id: str) -> Response:
    """Remove a label."""
    body = await authenticated_body(request)
    await service.delete_label(
        store_of(request), _path_id(label_id, "prompt_label_id"), _actor(request, body)
    )
    return Response(status_code=204)
