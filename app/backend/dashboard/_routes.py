"""Dashboard HTTP routes: HTML pages under /dashboard and their JSON twins under /api.

Each page and its twin call the same builder in `_views`; the page renders it with the
autoescaping Jinja environment, the twin returns it as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.backend.api._http import store_of
from app.backend.dashboard import _views as views
from app.backend.dashboard._auth import (
    LOGIN_CSRF_COOKIE,
    check_key,
    clear_session,
    cookie_path,
    csrf_token,
    issue_session,
    new_login_csrf,
    require_api_auth,
    same_token,
    session_of,
    set_login_csrf,
)
from app.backend.dashboard._filters import STATUSES, parse_filters
from app.backend.dashboard._render import render
from app.backend.errors import ApiError, BadRequest

__all__ = ["api_router", "pages_router"]

pages_router = APIRouter(prefix="/dashboard", include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["dashboard"], dependencies=[Depends(require_api_auth)])

Builder = Callable[[sa.Connection], dict[str, Any]]
RequestId = Annotated[int, Path(ge=1, le=2**62)]
TemplateId = Annotated[int, Path(ge=1, le=2**62)]
VersionNumber = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
_MAX_FORM = 16_384


def _base(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") + "/dashboard"


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = urlencode({"next": target})
    return RedirectResponse(f"{_base(request)}/login?{query}", status_code=303)


async def _page(
    request: Request,
    template: str,
    build: Callable[[], Builder],
    *,
    error_template: str = "error.html",
    **extra: Any,
) -> Response:
    """Render `template` over the builder's data; sign-in first; errors as a page."""
    session = session_of(request)
    if session is None:
        return _login_redirect(request)
    context = {"session_csrf": csrf_token(request, session), **extra}
    try:
        data = await store_of(request).read(build())
    except ApiError as error:
        context["error"] = error.message
        return render(request, error_template, context, status_code=error.status)
    return render(request, template, {**context, "data": data})


async def _twin(build: Callable[[], Builder], request: Request) -> JSONResponse:
    data = await store_of(request).read(build())
    return JSONResponse(views.jsonable(data))


# Pages ---------------------------------------------------------------------------------------


@pages_router.get("")
async def dashboard_root(request: Request) -> Response:
    """The dashboard lives at /dashboard/."""
    return RedirectResponse(f"{_base(request)}/", status_code=307)


@pages_router.get("/")
async def requests_page(request: Request) -> Response:
    """The request list, filtered and paged."""

    def build() -> Builder:
        filters = parse_filters(request.query_params)
        return lambda c: views.requests_view(c, filters=filters)

    try:
        filters = parse_filters(request.query_params)
    except BadRequest:
        filters = None
    return await _page(
        request,
        "requests.html",
        build,
        error_template="requests.html",
        filters=filters,
        statuses=STATUSES,
    )


@pages_router.get("/requests/{request_id}")
async def request_page(request: Request, request_id: RequestId) -> Response:
    """One request in full."""
    return await _page(
        request, "request.html", lambda: lambda c: views.request_view(c, request_id=request_id)
    )


@pages_router.get("/prompts")
async def prompts_page(request: Request) -> Response:
    """Every prompt template."""
    return await _page(request, "prompts.html", lambda: views.prompts_view)


@pages_router.get("/prompts/{template_id}")
async def prompt_page(request: Request, template_id: TemplateId) -> Response:
    """One template: versions, labels, statistics per version, charts."""
    return await _page(
        request, "prompt.html", lambda: lambda c: views.prompt_view(c, template_id=template_id)
    )


@pages_router.get("/prompts/{template_id}/diff")
async def diff_page(
    request: Request, template_id: TemplateId, old: VersionNumber = None, new: VersionNumber = None
) -> Response:
    """The diff between two versions."""
    return await _page(
        request,
        "diff.html",
        lambda: lambda c: views.diff_view(c, template_id=template_id, old=old, new=new),
    )


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect."""
    base = _base(request)
    if target and target.startswith(base + "/") and "//" not in target and "\\" not in target:
        return target
    return base + "/"


@pages_router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (the backend's API key)."""
    return _login_form(request, next_url=_safe_next(request, next), error=None, status=200)


def _login_form(request: Request, *, next_url: str, error: str | None, status: int) -> Response:
    token = new_login_csrf()
    context = {"next": next_url, "error": error, "login_csrf": token}
    response = render(request, "login.html", context, status_code=status)
    set_login_csrf(request, response, token)
    return response


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        raise BadRequest("form too large")
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


@pages_router.post("/login")
async def login(request: Request) -> Response:
    """Check the key and the form's CSRF token; set the session cookie."""
    form = await _form(request)
    next_url = _safe_next(request, form.get("next"))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not same_token(cookie, form.get("csrf", "")):
        return _login_form(
            request, next_url=next_url, error="The form expired; try again.", status=403
        )
    if not check_key(request, form.get("key", "")):
        return _login_form(request, next_url=next_url, error="Wrong key.", status=401)
    response = RedirectResponse(next_url, status_code=303)
    issue_session(request, response)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=cookie_path(request))
    return response


@pages_router.post("/logout")
async def logout(request: Request) -> Response:
    """Clear the session cookie (the form carries the session's CSRF token)."""
    form = await _form(request)
    session = session_of(request)
    if session is not None and not same_token(csrf_token(request, session), form.get("csrf", "")):
        return HTMLResponse("Forbidden: bad CSRF token.", status_code=403)
    response = RedirectResponse(f"{_base(request)}/login", status_code=303)
    clear_session(request, response)
    return response


# JSON twins ----------------------------------------------------------------------------------


@api_router.get("/requests")
async def requests_api(request: Request) -> JSONResponse:
    """The request list (filters as on the page: tag, route, endpoint, chain, prompt, version,
    status, score_name, score_min, score_max, since, until, q, before, after, limit)."""
    filters = parse_filters(request.query_params)
    return await _twin(lambda: lambda c: views.requests_view(c, filters=filters), request)


@api_router.get("/requests/{request_id}")
async def request_api(request: Request, request_id: RequestId) -> JSONResponse:
    """One request in full."""
    return await _twin(lambda: lambda c: views.request_view(c, request_id=request_id), request)


@api_router.get("/prompts")
async def prompts_api(request: Request) -> JSONResponse:
    """Every prompt template with its labels."""
    return await _twin(lambda: views.prompts_view, request)


@api_router.get("/prompts/{template_id}")
async def prompt_api(request: Request, template_id: TemplateId) -> JSONResponse:
    """One template: versions with statistics, requests per day."""
    return await _twin(lambda: lambda c: views.prompt_view(c, template_id=template_id), request)


@api_router.get("/prompts/{template_id}/diff")
async def diff_api(
    request: Request, template_id: TemplateId, old: VersionNumber = None, new: VersionNumber = None
) -> JSONResponse:
    """The diff between versions `old` and `new` (default: the two latest)."""
    return await _twin(
        lambda: lambda c: views.diff_view(c, template_id=template_id, old=old, new=new), request
    )
