"""The API key the embedded backend accepts."""

from __future__ import annotations

import sys

from app.config import Settings
from app.secrets_store import load_or_create_secret

__all__ = ["resolve_backend_api_key"]


def resolve_backend_api_key(settings: Settings) -> str:
    """PROMPTLAYER_API_KEY when set; else a key generated once and kept in the data directory."""
    if settings.promptlayer_api_key is not None:
        return settings.promptlayer_api_key.get_secret_value()
    path = settings.data_dir / "backend_api_key"
    key, created = load_or_create_secret(path, prefix="pl_")
    if created:
        # Printed once, at creation, so the operator can hand it to clients; never logged.
        print(
            f"promptserve: generated the embedded PromptLayer backend API key {key} "
            f"(kept in {path}; set PROMPTLAYER_API_KEY to choose your own)",
            file=sys.stderr,
            flush=True,
        )
    return key
