"""The served application."""

from __future__ import annotations

from app.service._app import create_app

__all__ = ["create_app"]
