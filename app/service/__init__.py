"""The served application."""

from __future__ import annotations

from app.service._app import create_app
from app.service._catalog import CatalogError, discover_chains

__all__ = ["CatalogError", "create_app", "discover_chains"]
