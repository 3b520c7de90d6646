"""One seeder at a time across processes and replicas sharing the embedded registry.

Seeding asks the registry whether a template exists, then publishes it: two replicas
starting together could both see "missing" and publish version 1 and version 2 of the
same file. The whole check-and-publish runs under a lock that every process of every
replica takes: a PostgreSQL session advisory lock (replicas share the database), or a
file lock beside the SQLite file (SQLite means one machine). The lock is not a database
write lock, because the seeding itself writes through the backend's HTTP API.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

__all__ = ["seed_lock"]

# Any constant works, as long as every process uses the same; distinct from migrations'.
_SEED_LOCK_KEY = 0x7365656473  # "seeds"


@contextlib.contextmanager
def seed_lock(sqlalchemy_url: str) -> Iterator[None]:
    """Hold the seeding lock of the database at `sqlalchemy_url` (blocking)."""
    url = sa.make_url(sqlalchemy_url)
    if url.get_backend_name() == "postgresql":
        with _advisory_lock(sqlalchemy_url):
            yield
    else:
        database = url.database or ""
        lock_path = Path(database + ".seed-lock") if database not in ("", ":memory:") else None
        if lock_path is None:
            yield  # an in-memory database is private to this process
            return
        with _file_lock(lock_path):
            yield


@contextlib.contextmanager
def _advisory_lock(sqlalchemy_url: str) -> Iterator[None]:
    engine = sa.create_engine(sqlalchemy_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _SEED_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _SEED_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
