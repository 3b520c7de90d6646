"""The dashboard's Jinja environment (autoescape on, templates from the package) and rendering."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from app.backend.dashboard._present import bar_chart

__all__ = ["SECURITY_HEADERS", "make_environment", "render"]

# Nothing but our own files may load or run; stored text can't become script even if a
# template ever slipped. frame-ancestors: no clickjacking of the sign-in form.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.0f} ms"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def make_environment() -> Environment:
    """A Jinja environment over the package's templates, escaping everything by default."""
    env = Environment(
        loader=PackageLoader("app.backend.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, ms=_ms, pretty=_pretty, percent=_percent, qs=urlencode)
    env.globals["bar_chart"] = bar_chart
    return env


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """`template` rendered with `context` plus the page's base URLs."""
    env: Environment = request.app.state.dashboard_templates
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = {
        "base": f"{root}/dashboard",
        "api": f"{root}/api",
        "path": request.url.path,
        "query": request.url.query,
        "error": None,
        "session_csrf": None,
        **context,
    }
    html = env.get_template(template).render(page)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
