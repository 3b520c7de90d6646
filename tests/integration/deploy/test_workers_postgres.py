"""`serve --workers 2` on PostgreSQL: one worker serves a request, the other takes its score."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.integration.deploy.conftest import json_lines, metric_value
from tests.integration.service.conftest import SERVICE_KEY, write_templates
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, wait_until_up

pytestmark = pytest.mark.postgres

INPUT = {"input": {"product": "lamps"}}


@pytest.fixture
def two_workers(
    tmp_path: Path, postgres_url: str, fake_llm: tuple[FakeOpenAI, str]
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "OPENAI_BASE_URL": f"{fake_llm[1]}/v1",
        "OPENAI_API_KEY": "sk-test",
        "PROMPTLAYER_API_KEY": "backend-key",
        "PROMPTSERVE_API_KEYS": SERVICE_KEY,
        "PROMPTSERVE_DATA_DIR": str(tmp_path / "data"),
        "PROMPTSERVE_TEMPLATES_DIR": str(write_templates(tmp_path / "seed")),
        "PROMPTSERVE_LOG_WAIT_SECONDS": "5",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/readyz", proc=proc, timeout=120)
        yield url, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pid_of(log: Path, request_id: str, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in json_lines(log):
            access = entry.get("logger") == "promptserve.access"
            if access and entry.get("request_id") == request_id:
                return int(entry["pid"])
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {request_id}")


def test_a_request_served_by_one_worker_is_scored_through_the_other(
    two_workers: tuple[str, Path], postgres_url: str
) -> None:
    url, log = two_workers
    # Each request on a new connection: the kernel hands connections to either worker.
    served: dict[int, dict] = {}
    for _ in range(40):
        rid = uuid.uuid4().hex
        answer = httpx.post(f"{url}/example/invoke", json=INPUT, headers={"X-Request-Id": rid})
        assert answer.status_code == 200, answer.text
        served.setdefault(_pid_of(log, rid), answer.json()["metadata"])
        if len(served) == 2:
            break
    assert len(served) == 2, "both workers should serve requests"
    (pid_a, metadata), (pid_b, _) = served.items()

    for _ in range(40):
        rid = uuid.uuid4().hex
        scored = httpx.post(
            f"{url}/feedback",
            json={"request_id": metadata["promptlayer_request_id"], "score": 42,
                  "feedback_token": metadata["feedback_token"]},
            headers={"X-Request-Id": rid},
        )
        assert scored.status_code == 200, scored.text
        if _pid_of(log, rid) == pid_b:
            break
    else:
        raise AssertionError(f"no feedback landed on worker {pid_b}")

    with psycopg.connect(postgres_url) as db:
        versions = db.execute(
            "SELECT count(*) FROM prompt_versions v JOIN prompt_templates t "
            "ON t.id = v.template_id WHERE t.name = 'example'"
        ).fetchone()
        score_count = db.execute("SELECT count(*) FROM scores").fetchone()
    # Both workers seeded at the same moment; the lock let only one publish.
    assert versions == (1,)
    assert score_count is not None and score_count[0] >= 1

    # /metrics answers for every worker at once (multiprocess mode).
    text = httpx.get(f"{url}/metrics").text
    invokes = metric_value(
        text, "promptserve_http_requests_total", route="/example/invoke", status="200"
    )
    assert invokes == sum(
        1 for e in json_lines(log)
        if e.get("logger") == "promptserve.access" and e.get("route") == "/example/invoke"
    )
    assert metric_value(text, "promptserve_feedback_total", outcome="recorded") >= 1
    # Each worker froze its own start-up heap (app.serving.worker_app).
    frozen = {e["pid"] for e in json_lines(log) if e.get("logger") == "app.heap_freeze"}
    assert frozen == {pid_a, pid_b}
