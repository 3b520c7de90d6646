"""A `promptserve backend` in a child process, its registry seeded, its rows countable."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from promptlayer import PromptLayer

from app.publishing import seed_registry
from bench._chains import EXAMPLE
from bench._procs import Server, free_port, spawn
from chains import TEMPLATES_DIR
from promptserve.prompts import fetch_template
from tests.utils.databases import throwaway_postgres_database as postgres_database

__all__ = ["API_KEY", "Database", "backend_env", "postgres_database", "running_backend",
           "seed", "settle"]

API_KEY = "bench-key"


class Database:
    """Counts stored requests in a backend's database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def requests(self) -> int:
        """How many requests are stored."""
        with self._engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM requests")).scalar_one())

    def dispose(self) -> None:
        """Release the engine."""
        self._engine.dispose()


def settle(db: Database, *, quiet: float = 0.5, limit: float = 15.0) -> int:
    """The request count once it has not moved for `quiet` s (logs still landing)."""
    deadline = time.monotonic() + limit
    last, since = db.requests(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = db.requests()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def backend_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment of a backend (or an embedded service) with the bench key."""
    env = {"PROMPTLAYER_API_KEY": API_KEY, "PROMPTSERVE_DATA_DIR": str(data_dir),
           "PROMPTLAYER_BASE_URL": "", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def sqlalchemy_url(data_dir: Path, database_url: str | None) -> str:
    """The URL the backend stores into (as Settings.sqlalchemy_url derives it)."""
    if database_url is None:
        return f"sqlite:///{(data_dir / 'promptserve.db').resolve()}"
    return database_url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextlib.contextmanager
def running_backend(
    name: str, work: Path, *, database_url: str | None = None, module: str = "app.cli",
    kind: str = "backend", data_dir: Path | None = None,
) -> Iterator[tuple[Server, Database]]:
    """`python -m app.cli backend` (or a bench variant) on a free port, with its database."""
    data_dir = data_dir or work / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [module, kind, "--port", str(port)]
    db = Database(sqlalchemy_url(data_dir, database_url))
    try:
        with spawn(name, args, env=backend_env(data_dir, database_url), port=port,
                   log_dir=work) as server:
            yield server, db
    finally:
        db.dispose()


def seed(base_url: str) -> int:
    """Publish the bundled templates; the example template's id."""
    client = PromptLayer(api_key=API_KEY, base_url=base_url)
    seed_registry(TEMPLATES_DIR, client)
    return int(fetch_template(client, EXAMPLE)["id"])

