"""Embedded PromptLayer-compatible backend: registry, request log, scores, groups.

The official `promptlayer` SDK works against it unchanged (see promptlayer-api.md).
"""

from __future__ import annotations

from app.backend._api_key import resolve_backend_api_key
from app.backend._app import create_backend_app

__all__ = ["create_backend_app", "resolve_backend_api_key"]
