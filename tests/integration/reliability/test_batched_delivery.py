"""Under load the service sends logs in batches to a real backend over HTTP, and every
answer still carries the id of its own stored log."""

from __future__ import annotations

from pathlib import Path

from app.service import create_app
from tests.integration.reliability.conftest import (
    Backend,
    external_settings,
    run_load,
    wait_for,
)
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread


async def test_batched_logs_land_once_each_and_every_answer_has_its_own_id(
    tmp_path: Path, backend: Backend, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    # One post in flight at a time: logs that finish meanwhile must share the next one.
    settings = external_settings(tmp_path / "service", backend.url, fake_llm[1],
                                 delivery_batch_posts=1)
    app = create_app(settings)
    with serve_in_thread(app) as url:
        load = await run_load(url, seconds=3.0, clients=16)
        delivery = app.state.delivery
        await wait_for(lambda: delivery.stats()["queue_depth"] == 0
                       and delivery.stats()["in_flight"] == 0, timeout=10)
        stats = delivery.stats()
    assert load.failures == []
    assert stats["batched_logs_total"] > 0, stats  # batches did form
    assert stats["log_posts_total"] < stats["delivered_total"] == len(load.answers)
    logs = {log["id"]: log for log in backend.logs()}
    assert len(logs) == len(load.answers)
    for answer in load.answers:
        # The id in the answer is the stored log of this very run.
        assert logs[answer["promptlayer_request_id"]]["root"] == answer["run_id"]
