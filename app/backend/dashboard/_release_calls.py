"""The dashboard's calls of the releases service, in one place.

The pages and forms go through `app.releases.service` (the functions behind the JSON API),
never the tables, so every change the dashboard makes lands in the history the same way.
The history names who made a change without showing the key: a dashboard session is bought
with the backend's key, so it is `service.who(key, "dashboard")`, `dashboard (…abcd)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request

from app.backend.api._http import api_key_of

if TYPE_CHECKING:
    from app.backend.store import Store

__all__ = [
    "dashboard_actor",
    "end_split",
    "get_release",
    "judgement",
    "list_releases",
    "promote",
    "rollback",
]


def dashboard_actor(request: Request) -> str:
    """`dashboard (…abcd)`: the client and the key's fingerprint, never the key."""
    actor: str = _service().who(api_key_of(request), "dashboard")
    return actor


def _service() -> Any:
    from app.releases import service

    return service


async def list_releases(store: Store) -> list[dict[str, Any]]:
    """The splits in force."""
    found: list[dict[str, Any]] = await _service().list_releases(store)
    return found


async def get_release(store: Store, template: str, label: str) -> dict[str, Any]:
    """`{"split", "version", "history"}` of one label (404 when the template is unknown)."""
    found: dict[str, Any] = await _service().get_release(store, template, label)
    return found


async def judgement(store: Store, template: str, label: str) -> dict[str, Any]:
    """`{"split", "arms", "comparisons", "series"}` of a split label."""
    found: dict[str, Any] = await _service().judgement(store, template, label)
    return found


async def promote(
    store: Store, template: str, label: str, version: int | None, *, by: str
) -> dict[str, Any]:
    """Move the label to `version` (None: the challenger judged better); the split ends."""
    done: dict[str, Any] = await _service().promote(store, template, label, version, by=by)
    return done


async def rollback(store: Store, template: str, label: str, *, by: str) -> dict[str, Any]:
    """Move the label back to the control; the split ends."""
    done: dict[str, Any] = await _service().rollback(store, template, label, by=by)
    return done


async def end_split(store: Store, template: str, label: str, *, by: str) -> dict[str, Any]:
    """End the split; the label stays on the control."""
    done: dict[str, Any] = await _service().end_split(store, template, label, by=by)
    return done
