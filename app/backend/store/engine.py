"""Engines for SQLite and PostgreSQL, and the schema migration run at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from promptserve import json_codec

__all__ = ["make_engine", "migrate"]

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same in every process of this app.
_MIGRATION_LOCK_KEY = 0x70726F6D7074  # "prompt"


def _json_text(value: Any) -> str:
    return json_codec.dumps(value).decode()


# JSON columns through orjson, as the API reads and writes JSON: the standard library's
# encoder was a tenth of the backend's CPU per batched log.
_JSON = {"json_serializer": _json_text, "json_deserializer": json_codec.loads}


def make_engine(url: str) -> sa.Engine:
    """An engine for `url`; for SQLite: WAL, synchronous=NORMAL, busy_timeout, own BEGINs."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8, **_JSON)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_size=8, max_overflow=8, **_JSON)
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy (our "begin" hook) issue BEGIN, so SAVEPOINTs work and the writer
    # can take the write lock up front with BEGIN IMMEDIATE (no lock-upgrade deadlocks).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def migrate(engine: sa.Engine) -> None:
    """Upgrade the schema to head; serialized across processes (advisory lock / write lock)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    connect = engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with connect as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            # Two replicas starting together: the second waits, then finds head applied.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
