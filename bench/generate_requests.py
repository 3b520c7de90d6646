"""Fill a store with N synthetic requests (default 1,000,000) for the dashboard benchmark.

Three prompts with three versions each (later versions take over with time and score a
little better), five or six tags per request, a score on 20 % of them (a second on 5 %),
2 % errors, a group for every tenth request, start times spread over the last 30 days.
Rows go in through the driver: executemany in large transactions on SQLite, COPY on
PostgreSQL, with explicit ids so tags and scores need no round trip.

Run: .venv/bin/python bench/generate_requests.py --database-url sqlite:////tmp/dash.db [--n N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from app.backend.store.engine import make_engine, migrate  # noqa: E402
from app.backend.store.registry import publish_version  # noqa: E402
from app.config import Settings  # noqa: E402

PROMPTS = {"example": "/example", "summarize": "/summarize", "translate": "/translate"}
ENDPOINTS = ["invoke"] * 12 + ["stream"] * 5 + ["batch"] * 2 + ["stream_events"]
PRODUCTS = ["toasters", "kettles", "bicycles", "umbrellas", "lamps", "pens", "socks", "drones"]
BATCH = 20_000
COLUMNS = (
    "id, kind, provider, model, input, output, parameters, metadata, prompt_version_id, "
    "prompt_input_variables, input_tokens, output_tokens, price, function_name, status, "
    "error_type, error_message, request_start_time, request_end_time, created_at, api_type, "
    "group_id"
)


def _publish(connection: sa.Connection, now: datetime) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = {}
    for name in PROMPTS:
        for number in (1, 2, 3):
            blueprint = {
                "type": "chat",
                "input_variables": ["product"],
                "messages": [
                    {
                        "role": "system",
                        "content": [{"type": "text", "text": f"Be brief (v{number})."}],
                    },
                    {"role": "user", "content": [{"type": "text", "text": f"{name} {{product}}"}]},
                ],
            }
            metadata = {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}
            found = publish_version(
                connection,
                name=name,
                tags=["bench"],
                prompt_template=blueprint,
                metadata=metadata,
                commit_message=f"bench version {number}",
                release_labels=["prod"] if number == 3 else [],
                now=now - timedelta(days=40 - number),
            )
            versions.setdefault(name, []).append(found.version_id)
    return versions


def _rows(
    n: int, first_id: int, first_group: int, versions: dict[str, list[int]], now: datetime
) -> Iterator[tuple[tuple[Any, ...], list[tuple[str, int]], list[tuple[Any, ...]], int | None]]:
    rng = random.Random(42)
    span = 30 * 24 * 3600
    names = list(PROMPTS)
    group = first_group - 1
    for i in range(n):
        request_id = first_id + i
        name = names[i % 3]
        progress = i / n  # later requests use later versions
        number = 1 if rng.random() > progress + 0.2 else (2 if rng.random() > progress else 3)
        start = now - timedelta(seconds=span * (1 - progress) + rng.random() * 30)
        end = start + timedelta(milliseconds=rng.lognormvariate(6.2 - 0.1 * number, 0.5))
        product = rng.choice(PRODUCTS)
        error = rng.random() < 0.02
        status = "ERROR" if error else ("WARNING" if rng.random() < 0.01 else "SUCCESS")
        text_in = json.dumps(
            {
                "type": "chat",
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": f"{name} {product} #{i}"}],
                    },
                ],
            }
        )
        text_out = json.dumps(
            {
                "type": "chat",
                "messages": [
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "text",
                                "text": "" if error else f"The best {product} ever made.",
                            }
                        ],
                    }
                ],
            }
        )
        group_id = None
        if i % 10 in (0, 1):
            if i % 10 == 0:
                group += 1
            group_id = group
        row = (
            request_id,
            "log",
            "openai",
            "gpt-4o-mini",
            text_in,
            text_out,
            '{"temperature": 0.7}',
            json.dumps({"_langchain_run_id": f"run-{i}"}),
            versions[name][number - 1],
            json.dumps({"product": product}),
            rng.randint(20, 60),
            0 if error else rng.randint(5, 40),
            0.0,
            "",
            status,
            "RateLimitError" if error else None,
            "rate limited" if error else None,
            start,
            end,
            end,
            None,
            group_id,
        )
        endpoint = rng.choice(ENDPOINTS)
        tags = [
            (f"route:{PROMPTS[name]}", request_id),
            (f"endpoint:{endpoint}", request_id),
            (f"chain:{name}", request_id),
            (f"prompt:{name}", request_id),
            (f"prompt_version:{number}", request_id),
        ]
        if number == 3:
            tags.append(("prompt_label:prod", request_id))
        scores = []
        if rng.random() < 0.2:
            value = max(0, min(100, int(rng.gauss(55 + 8 * number, 15))))
            scores.append((request_id, "default", value, end, end))
            if rng.random() < 0.25:
                scores.append((request_id, "helpfulness", rng.randint(0, 100), end, end))
        yield row, tags, scores, (group_id if i % 10 == 0 else None)


def _write_sqlite(
    raw: Any, requests: list[Any], tags: list[Any], scores: list[Any], groups: list[Any]
) -> None:
    cursor = raw.cursor()
    cursor.executemany("INSERT INTO groups (id, created_at) VALUES (?, ?)", groups)
    marks = ", ".join("?" * 22)
    cursor.executemany(f"INSERT INTO requests ({COLUMNS}) VALUES ({marks})", requests)
    cursor.executemany("INSERT INTO request_tags (tag, request_id) VALUES (?, ?)", tags)
    cursor.executemany(
        "INSERT INTO scores (request_id, name, score, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        scores,
    )


def _write_postgres(
    raw: Any, requests: list[Any], tags: list[Any], scores: list[Any], groups: list[Any]
) -> None:
    with raw.cursor() as cursor:
        for table, columns, rows in (
            ("groups", "id, created_at", groups),
            ("requests", COLUMNS, requests),
            ("request_tags", "tag, request_id", tags),
            ("scores", "request_id, name, score, created_at, updated_at", scores),
        ):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def generate(url: str, n: int) -> float:
    """Insert `n` requests into the database at `url`; return the seconds it took."""
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    with engine.begin() as connection:
        versions = _publish(connection, now)
        first_id = (connection.scalar(sa.text("SELECT max(id) FROM requests")) or 0) + 1
        first_group = (connection.scalar(sa.text("SELECT max(id) FROM groups")) or 0) + 1
    postgres = engine.dialect.name == "postgresql"
    write = _write_postgres if postgres else _write_sqlite
    buffers: tuple[list[Any], list[Any], list[Any], list[Any]] = ([], [], [], [])
    with engine.connect() as connection:
        raw: Any = connection.connection.driver_connection
        for count, (row, tags, scores, group) in enumerate(
            _rows(n, first_id, first_group, versions, now), start=1
        ):
            buffers[0].append(row)
            buffers[1].extend(tags)
            buffers[2].extend(scores)
            if group is not None:
                buffers[3].append((group, row[17]))
            if count % BATCH == 0 or count == n:
                _begin(raw, postgres)
                write(raw, *buffers)
                raw.commit() if postgres else raw.execute("COMMIT")
                for buffer in buffers:
                    buffer.clear()
                print(f"\r{count:,} / {n:,} requests", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        _finish(connection, raw, postgres)
    engine.dispose()
    return time.perf_counter() - started


def _begin(raw: Any, postgres: bool) -> None:
    if not postgres:
        raw.execute("BEGIN")


def _finish(connection: sa.Connection, raw: Any, postgres: bool) -> None:
    if postgres:
        with raw.cursor() as cursor:
            # Identity columns do not follow explicit ids: move them past what we wrote.
            for table in ("requests", "groups", "scores"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        raw.commit()
        # What autovacuum would reach soon on a live database: statistics, and the
        # visibility map that index-only scans need.
        raw.autocommit = True
        raw.execute("VACUUM ANALYZE")
    else:
        raw.execute("ANALYZE")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="sqlite:///… or postgresql://…")
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = Settings(_env_file=None, database_url=args.database_url)  # type: ignore[call-arg]
    url = settings.sqlalchemy_url
    seconds = generate(url, args.n)
    print(f"generated {args.n:,} requests in {seconds:.1f} s ({args.n / seconds:,.0f}/s)")


if __name__ == "__main__":
    main()
