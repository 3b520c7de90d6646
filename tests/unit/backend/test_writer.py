"""The store's writer: group commit with per-call savepoints, reads off the loop, migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.backend.store import Store, open_store
from app.backend.store.requests import create_group
from app.backend.store.schema import groups, scores


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'db' / 'x.db'}")
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'x.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql:", "postgresql+psycopg:")
    opened = open_store(url)
    yield opened
    opened.close()


NOW = datetime(2024, 1, 1)


def _fail_after_insert(connection: sa.Connection) -> int:
    create_group(connection, now=NOW)
    raise ValueError("boom")


def _database_error_after_insert(connection: sa.Connection) -> int:
    create_group(connection, now=NOW)
    # Foreign key violation: an error raised by the database itself.
    connection.execute(
        sa.insert(scores).values(request_id=999, name="x", score=1, created_at=NOW, updated_at=NOW)
    )
    return 0


async def test_failing_calls_do_not_hurt_the_batch(any_store: Store) -> None:
    calls = [any_store.write(lambda c: create_group(c, now=NOW)) for _ in range(20)]
    calls.insert(5, any_store.write(_fail_after_insert))
    calls.insert(10, any_store.write(_database_error_after_insert))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 2
    assert str(failures[0]) == "boom"
    assert isinstance(failures[1], sa.exc.IntegrityError)
    ids = sorted(r for r in results if isinstance(r, int))
    assert len(ids) == 20
    stored = await any_store.read(lambda c: sorted(c.scalars(sa.select(groups.c.id))))
    # The failed calls' inserts were rolled back with their savepoints.
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
    assert version == "0003"


async def test_ids_never_reused(store: Store) -> None:
    first = await store.write(lambda c: create_group(c, now=datetime(2024, 1, 1)))
    await store.write(lambda c: c.execute(sa.delete(groups).where(groups.c.id == first)))
    second = await store.write(lambda c: create_group(c, now=datetime(2024, 1, 1)))
    assert second == first + 1
