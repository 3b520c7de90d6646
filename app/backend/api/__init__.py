"""HTTP routes of the embedded backend, one module per area of its API (docs/PROMPTLAYER_API.md)."""

from __future__ import annotations

from app.backend.api import registry, requests, tracking

__all__ = ["registry", "requests", "tracking"]
