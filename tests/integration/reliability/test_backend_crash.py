"""The backend killed with SIGKILL mid-write: the store is intact, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.config import Settings
from tests.utils.servers import free_port, serve_in_process

KEY = "crash-test-key"


def _log_body(i: int) -> dict:
    message = {"role": "user", "content": [{"type": "text", "text": f"hello {i}"}]}
    return {"provider": "openai", "model": "m", "tags": ["crash", f"t{i % 7}"],
            "input": {"type": "chat", "messages": [message]},
            "output": {"type": "chat", "messages": []}, "metadata": {"i": str(i)},
            "request_start_time": 1.0, "request_end_time": 2.0}


async def _hammer(url: str, acknowledged: dict[str, int], stop: asyncio.Event) -> None:
    async def one_client(n: int) -> None:
        async with httpx.AsyncClient(timeout=5, headers={"X-API-KEY": KEY}) as client:
            i = 0
            while not stop.is_set():
                i += 1
                key = f"c{n}-{i}"
                try:
                    response = await client.post(f"{url}/log-request", json=_log_body(i),
                                                 headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 201:
                    acknowledged[key] = response.json()["id"]

    await asyncio.gather(*(one_client(n) for n in range(16)))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_sigkill_mid_write_leaves_a_consistent_store(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    env = {"PROMPTLAYER_API_KEY": KEY, "PROMPTSERVE_DATA_DIR": str(tmp_path / "data"),
           "HOST": "127.0.0.1"}
    if database == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    settings = Settings(_env_file=None, data_dir=tmp_path / "data",
                        database_url=env.get("DATABASE_URL"))
    acknowledged: dict[str, int] = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_process(["backend"], env={**env, "PORT": str(port)},
                          health_url=f"{url}/healthz", cwd=tmp_path) as proc:
        stop = asyncio.Event()
        hammer = asyncio.create_task(_hammer(url, acknowledged, stop))
        while len(acknowledged) < 300:
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-write: 16 clients are posting
        proc.wait(10)
        stop.set()
        await hammer

    if database == "sqlite":
        db = tmp_path / "data" / "promptserve.db"
        with sqlite3.connect(db) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    engine = sa.create_engine(settings.sqlalchemy_url)
    with engine.connect() as connection:
        stored = dict(connection.execute(
            sa.text("SELECT idempotency_key, id FROM requests")).all())
        orphans = connection.execute(sa.text(
            "SELECT count(*) FROM request_tags t LEFT JOIN requests r ON r.id = t.request_id "
            "WHERE r.id IS NULL")).scalar()
    engine.dispose()
    assert orphans == 0
    # Every write the backend acknowledged survived, with the id it answered.
    assert {k: stored.get(k) for k in acknowledged} == acknowledged

    # And it starts again on the same store, answering the same id to a repeated key.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_process(["backend"], env={**env, "PORT": str(port)},
                          health_url=f"{url}/healthz", cwd=tmp_path):
        key, request_id = next(iter(acknowledged.items()))
        again = httpx.post(f"{url}/log-request", json=_log_body(0),
                           headers={"X-API-KEY": KEY, "Idempotency-Key": key})
        assert again.status_code == 201 and again.json()["id"] == request_id
