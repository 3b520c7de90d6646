"""The store's writer: group commit with per-call savepoints, reads off the loop, migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.backend.store import Store, open_store
from app.backend.store.requests import create_group
from app.backend.store.schema import groups


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'db' / 'x.db'}")
    yield opened
    opened.close()


def _fail_after_insert(connection: sa.Connection) -> int:
    connection.execute(sa.insert(groups).values(created_at=sa.func.current_timestamp()))
    raise ValueError("boom")


async def test_one_failing_call_does_not_hurt_the_batch(store: Store) -> None:
    from datetime import datetime

    now = datetime(2024, 1, 1)
    calls = [store.write(lambda c: create_group(c, now=now)) for _ in range(20)]
    calls.insert(10, store.write(_fail_after_insert))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and str(failures[0]) == "boom"
    ids = sorted(r for r in results if isinstance(r, int))
    assert len(ids) == 20
    stored = await store.read(lambda c: sorted(c.scalars(sa.select(groups.c.id))))
    # The failed call's insert was rolled back with its savepoint.
    assert stored == ids


def test_sqlite_pragmas_and_migration_idempotent(store: Store, tmp_path: Path) -> None:
    mode = store.read_sync(lambda c: c.exec_driver_sql("PRAGMA journal_mode").scalar())
    sync = store.read_sync(lambda c: c.exec_driver_sql("PRAGMA synchronous").scalar())
    assert (mode, sync) == ("wal", 1)
    again = open_store(f"sqlite:///{tmp_path / 'db' / 'x.db'}")  # head already applied: no-op
    version = again.read_sync(
        lambda c: c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    )
    again.close()
    assert version == "0001"


async def test_ids_never_reused(store: Store) -> None:
    from datetime import datetime

    first = await store.write(lambda c: create_group(c, now=datetime(2024, 1, 1)))
    await store.write(lambda c: c.execute(sa.delete(groups).where(groups.c.id == first)))
    second = await store.write(lambda c: create_group(c, now=datetime(2024, 1, 1)))
    assert second == first + 1
