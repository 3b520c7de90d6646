"""PromptLayer stopped for 20 s while 30 s of load runs: nothing fails, nothing is lost."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.service import create_app
from tests.integration.reliability.conftest import (
    Backend,
    external_settings,
    run_load,
    wait_for,
)
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

LOAD_SECONDS = 30.0
OUTAGE_STARTS, OUTAGE_SECONDS = 5.0, 20.0
FEEDBACK_RUNS = 10


@pytest.mark.timeout(150)
async def test_outage_under_load_loses_nothing_and_applies_feedback(
    tmp_path: Path, backend: Backend, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    settings = external_settings(tmp_path / "service", backend.url, fake_llm[1])
    app = create_app(settings)
    scored: dict[str, int] = {}  # run id -> score given while its log was pending
    peak = {"spool": 0}
    returned = {"at": 0.0}

    async def score_pending(client: httpx.AsyncClient, metadata: dict[str, Any]) -> None:
        if metadata["promptlayer_request_id"] is not None or len(scored) >= FEEDBACK_RUNS:
            return
        score = 10 + len(scored)
        scored[metadata["run_id"]] = score
        response = await client.post(f"{settings_url}/feedback", json={
            "run_id": metadata["run_id"], "score": score, "name": "outage",
            "feedback_token": metadata["feedback_token"]})
        assert response.status_code in (200, 202), response.text

    async def outage() -> None:
        await asyncio.sleep(OUTAGE_STARTS)
        await asyncio.to_thread(backend.server.stop)
        ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < ends:
            peak["spool"] = max(peak["spool"], app.state.delivery.stats()["spool_pending"])
            await asyncio.sleep(0.2)
        await asyncio.to_thread(backend.server.start)
        returned["at"] = time.monotonic()

    with serve_in_thread(app) as settings_url:
        load, _ = await asyncio.gather(
            run_load(settings_url, seconds=LOAD_SECONDS, on_answer=score_pending), outage())
        delivery = app.state.delivery

        def drained() -> bool:
            stats = delivery.stats()
            peak["spool"] = max(peak["spool"], stats["spool_pending"])
            return stats["spool_pending"] == 0 and stats["queue_depth"] == 0 \
                and stats["in_flight"] == 0
        drain_seconds = await wait_for(drained, timeout=60)
        drained_at = time.monotonic()
        assert load.failures == []
        served = {a["run_id"] for a in load.answers}
        logs = backend.logs()
        assert len(logs) == len(load.answers)  # one LLM call per request
        assert len({log["key"] for log in logs}) == len(logs)  # no duplicates
        assert {log["root"] for log in logs} == served
        assert len(scored) == FEEDBACK_RUNS, "the outage should leave some answers pending"
        by_root = {log["root"]: log["id"] for log in logs}

        def applied() -> bool:
            scores = backend.scores()
            return all(scores.get(by_root[r], {}).get("outage") == s for r, s in scored.items())
        await wait_for(applied, timeout=30)
        stats = delivery.stats()
    figures = {
        "requests_served": len(load.answers),
        "logs_stored": len(logs),
        "answers_with_null_id": sum(a["promptlayer_request_id"] is None for a in load.answers),
        "spool_peak": max(peak["spool"], stats["spool_peak"]),
        "drain_seconds_after_load": round(drain_seconds, 2),
        "drained_seconds_after_backend_returned": round(drained_at - returned["at"], 2),
        "failed_attempts": stats["failed_attempts_total"],
        "feedback_pending_then_applied": len(scored),
    }
    print("OUTAGE FIGURES", json.dumps(figures))
