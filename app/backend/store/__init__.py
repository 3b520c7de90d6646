"""Persistence of the embedded backend: schema, migrations runner, writer thread, repositories."""

from __future__ import annotations

from app.backend.store._store import Store, open_store

__all__ = ["Store", "open_store"]
