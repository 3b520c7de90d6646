"""The embedded backend's web dashboard: pages under /dashboard, JSON twins under /api."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.requests import Request
from starlette.staticfiles import StaticFiles

from app.backend.dashboard._release_routes import release_api_router, release_pages_router
from app.backend.dashboard._render import make_environment
from app.backend.dashboard._routes import api_router, pages_router

__all__ = ["install_dashboard"]

_STATIC = Path(__file__).resolve().parent / "static"


def install_dashboard(app: FastAPI) -> None:
    """Add the dashboard's pages, JSON API and static files to the backend app."""
    app.state.dashboard_templates = make_environment()
    app.include_router(pages_router)
    app.include_router(api_router)
    app.include_router(release_pages_router)
    app.include_router(release_api_router)
    app.mount("/dashboard/static", StaticFiles(directory=_STATIC), name="dashboard-static")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        """The backend's root opens the dashboard."""
        base = str(request.scope.get("root_path", "")).rstrip("/")
        return RedirectResponse(f"{base}/dashboard/", status_code=307)
