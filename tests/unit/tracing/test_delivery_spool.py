"""LogDelivery with a spool, against a local HTTP server that can go down and come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from app.tracing import LogDelivery
from tests.utils.stub_http import DROP, Answer, Received, stub_server


class Switchable:
    """A PromptLayer stand-in: down (connections dropped unanswered) or up (201, stable id)."""

    def __init__(self) -> None:
        self.up = False
        self.received: list[str] = []
        self.ids: dict[str, int] = {}

    def __call__(self, request: Received) -> Answer | str:
        if not self.up:
            return DROP
        key = request.headers["idempotency-key"]
        self.received.append(key)
        self.ids.setdefault(key, len(self.ids) + 1)  # the backend dedupes by key
        return Answer(201, {"id": self.ids[key]})


@contextlib.asynccontextmanager
async def _serving(server: Switchable) -> AsyncIterator[str]:
    async with stub_server(server) as stub:
        yield stub.url


def _delivery(url: str, spool: Path, **kwargs: float) -> LogDelivery:
    options = {"wait_budget": 0.2, "backoff_initial": 0.01, "backoff_max": 0.05, **kwargs}
    return LogDelivery(base_url=url, api_key="k", spool_dir=spool, **options)


def _body(i: int) -> dict:
    return {"n": i, "metadata": {"_langchain_root_run_id": f"root-{i}"}}


async def _until(check, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_undeliverable_logs_are_spooled_then_delivered_in_order(tmp_path: Path) -> None:
    server = Switchable()
    async with _serving(server) as url:
        delivery = _delivery(url, tmp_path)
        await delivery.start()
        assert await delivery.submit(_body(0), idempotency_key="k0") is None  # budget spent
        # Logs posted concurrently have no order; once one is spooled, the rest queue behind it.
        futures = [delivery.submit(_body(i), idempotency_key=f"k{i}") for i in range(1, 6)]
        assert await asyncio.gather(*futures) == [None] * 5
        stats = delivery.stats()
        assert stats["spool_pending"] == 6 and stats["failed_attempts_total"] > 0
        server.up = True
        await _until(lambda: delivery.stats()["spool_pending"] == 0)
        assert list(dict.fromkeys(server.received)) == [f"k{i}" for i in range(6)]
        assert delivery.request_id_for_run("root-3") == server.ids["k3"]
        await delivery.aclose()


async def test_listener_hears_late_landings(tmp_path: Path) -> None:
    server = Switchable()
    async with _serving(server) as url:
        delivery = _delivery(url, tmp_path)
        await delivery.start()
        heard: list[tuple[str, int]] = []
        delivery.add_listener(lambda run, rid: heard.append((run, rid)))
        assert await delivery.submit(_body(1), idempotency_key="k1") is None
        server.up = True
        await _until(lambda: bool(heard))
        assert heard == [("root-1", 1)]
        await delivery.aclose()


async def test_spool_survives_a_restart(tmp_path: Path) -> None:
    server = Switchable()
    async with _serving(server) as url:
        first = _delivery(url, tmp_path)
        await first.start()
        await asyncio.gather(*(first.submit(_body(i), idempotency_key=f"k{i}") for i in range(3)))
        await first.aclose()
        server.up = True
        second = _delivery(url, tmp_path)
        await second.start()
        await _until(lambda: second.stats()["spool_pending"] == 0)
        assert sorted(set(server.received)) == ["k0", "k1", "k2"]
        assert second.request_id_for_run("root-2") == server.ids["k2"]
        await second.aclose()


async def test_close_spools_what_is_still_in_flight(tmp_path: Path) -> None:
    server = Switchable()
    async with _serving(server) as url:
        delivery = _delivery(url, tmp_path, wait_budget=30)
        await delivery.start()
        future = delivery.submit(_body(1), idempotency_key="k1")
        await asyncio.sleep(0.05)
        await delivery.aclose(timeout=0.1)
        assert future.result() is None
        lines = [json.loads(x) for p in tmp_path.glob("*.jsonl")
                 for x in p.read_text().splitlines()]
        assert [line["k"] for line in lines] == ["k1"]


async def test_full_queue_spills_to_the_spool(tmp_path: Path) -> None:
    server = Switchable()
    async with _serving(server) as url:
        server.up = True
        delivery = _delivery(url, tmp_path, queue_size=1, workers=1)
        await delivery.start()
        futures = [delivery.submit(_body(i), idempotency_key=f"k{i}") for i in range(5)]
        await asyncio.gather(*futures)
        await _until(lambda: delivery.stats()["spool_pending"] == 0)
        assert sorted(set(server.received)) == [f"k{i}" for i in range(5)]
        assert delivery.stats()["spooled_total"] >= 1
        await delivery.aclose()
