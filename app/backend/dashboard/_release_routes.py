"""Dashboard routes of A/B releases: the list and one release's page, their JSON twins, and
the signed-in, CSRF-checked forms that promote, roll back or end a split.

The pages read through the releases service (`app.releases.service`), the same functions
the JSON API of docs/RELEASES.md calls, so the dashboard can never show or do something the
API would not. A form answers 303 back to the release page, so reloading it repeats nothing;
a refusal (say, promoting a split that has ended meanwhile) shows the page again with the
service's message.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.backend.api._http import store_of
from app.backend.dashboard import _release_calls as calls
from app.backend.dashboard import _views as views
from app.backend.dashboard._auth import csrf_token, require_api_auth, same_token, session_of
from app.backend.dashboard._release_views import release_view, releases_view
from app.backend.dashboard._render import render
from app.backend.dashboard._routes import _base, _form, _login_redirect
from app.backend.dashboard._score_chart import score_chart
from app.backend.errors import ApiError, BadRequest
from app.backend.store.schema import prompt_templates as T

__all__ = ["release_api_router", "release_pages_router"]

release_pages_router = APIRouter(prefix="/dashboard/releases", include_in_schema=False)
release_api_router = APIRouter(
    prefix="/api/releases", tags=["dashboard"], dependencies=[Depends(require_api_auth)]
)

# Template names may hold '/', so the template takes the path up to the last segment.
TemplateName = Annotated[str, Path(min_length=1, max_length=512)]
LabelName = Annotated[str, Path(min_length=1, max_length=256)]


def _template_id(connection: sa.Connection, name: str) -> int | None:
    found = connection.execute(sa.select(T.c.id).where(T.c.name == name)).scalar()
    return None if found is None else int(found)


async def _release_data(request: Request, template: str, label: str) -> dict[str, Any]:
    store = store_of(request)
    release = await calls.get_release(store, template, label)
    judged = await calls.judgement(store, template, label) if release.get("split") else None
    prompt_id = await store.read(lambda c: _template_id(c, template))
    return release_view(
        template=template, label=label, release=release, judgement=judged, prompt_id=prompt_id
    )


def release_page_url(request: Request, template: str, label: str) -> str:
    """The release page's path (each name percent-encoded, '/' included)."""
    return f"{_base(request)}/releases/{quote(template, safe='')}/{quote(label, safe='')}"


async def _show_release(
    request: Request,
    template: str,
    label: str,
    *,
    session: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {"session_csrf": csrf_token(request, session)}
    try:
        data = await _release_data(request, template, label)
    except ApiError as failure:
        context["error"] = failure.message
        return render(request, "error.html", context, status_code=failure.status)
    context.update(data=data, chart=score_chart(data["series"]), error=error)
    return render(request, "release.html", context, status_code=status)


# Pages ---------------------------------------------------------------------------------------


@release_pages_router.get("")
async def releases_page(request: Request) -> Response:
    """Every label split right now."""
    session = session_of(request)
    if session is None:
        return _login_redirect(request)
    context: dict[str, Any] = {"session_csrf": csrf_token(request, session)}
    try:
        data = releases_view(await calls.list_releases(store_of(request)))
    except ApiError as failure:
        context["error"] = failure.message
        return render(request, "error.html", context, status_code=failure.status)
    return render(request, "releases.html", {**context, "data": data})


@release_pages_router.get("/{template:path}/{label}")
async def release_page(request: Request, template: TemplateName, label: LabelName) -> Response:
    """One release label: arms side by side, the chart, the verdicts, the history, actions."""
    session = session_of(request)
    if session is None:
        return _login_redirect(request)
    return await _show_release(request, template, label, session=session)


async def _act(request: Request, template: str, label: str, action: str) -> Response:
    """Check sign-in and CSRF, carry out `action`, answer 303 back to the release page."""
    page = release_page_url(request, template, label)
    session = session_of(request)
    if session is None:
        return _login_redirect_to(request, page)
    try:
        form = await _form(request)
    except BadRequest as failure:
        return HTMLResponse(failure.message, status_code=400)
    if not same_token(csrf_token(request, session), form.get("csrf", "")):
        return HTMLResponse("Forbidden: bad CSRF token.", status_code=403)
    store, by = store_of(request), calls.dashboard_actor(request)
    try:
        if action == "promote":
            await calls.promote(store, template, label, _version(form), by=by)
        elif action == "rollback":
            await calls.rollback(store, template, label, by=by)
        else:
            await calls.end_split(store, template, label, by=by)
    except ApiError as failure:
        return await _show_release(
            request,
            template,
            label,
            session=session,
            error=failure.message,
            status=failure.status,
        )
    return RedirectResponse(page, status_code=303)


def _version(form: dict[str, str]) -> int | None:
    raw = form.get("version", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise BadRequest("version must be a version number")
    return int(raw)


def _login_redirect_to(request: Request, page: str) -> Response:
    return RedirectResponse(f"{_base(request)}/login?next={quote(page, safe='')}", status_code=303)


@release_pages_router.post("/{template:path}/{label}/promote")
async def promote_form(request: Request, template: TemplateName, label: LabelName) -> Response:
    """Promote a challenger (the form's `version`; none: the one judged better)."""
    return await _act(request, template, label, "promote")


@release_pages_router.post("/{template:path}/{label}/rollback")
async def rollback_form(request: Request, template: TemplateName, label: LabelName) -> Response:
    """Roll the label back to the control; the split ends."""
    return await _act(request, template, label, "rollback")


@release_pages_router.post("/{template:path}/{label}/end")
async def end_form(request: Request, template: TemplateName, label: LabelName) -> Response:
    """End the split; the label stays on the control."""
    return await _act(request, template, label, "end")


# JSON twins ----------------------------------------------------------------------------------


@release_api_router.get("")
async def releases_api(request: Request) -> JSONResponse:
    """Every label split right now, as the list page shows them."""
    data = releases_view(await calls.list_releases(store_of(request)))
    return JSONResponse(views.jsonable(data))


@release_api_router.get("/{template:path}/{label}")
async def release_api(request: Request, template: TemplateName, label: LabelName) -> JSONResponse:
    """One release label: split, arms with their figures, verdicts, series, history."""
    data = await _release_data(request, template, label)
    return JSONResponse(views.jsonable(data))
