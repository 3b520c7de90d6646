"""LogDelivery with a spool, against a local HTTP server that can go down and come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from promptserve.tracing import BATCH_PATH, LogDelivery
from promptserve.tracing._drain import SpoolDrain
from promptserve.tracing._poster import Poster
from tests.utils.stub_http import DROP, Answer, Received, stub_server


class Switchable:
    """A PromptLayer stand-in: down (connections dropped unanswered) or up (201, stable id),
    with our backend's batch route unless `batch_route=False` (404 there, as hosted)."""

    def __init__(self, *, delay: float = 0.0, batch_route: bool = True) -> None:
        self.up = False
        self.delay = delay
        self.batch_route = batch_route
        self.received: list[str] = []
        self.batches: list[list[str]] = []
        self.ids: dict[str, int] = {}

    def _store(self, key: str) -> int:
        self.received.append(key)
        return self.ids.setdefault(key, len(self.ids) + 1)  # the backend dedupes by key

    def __call__(self, request: Received) -> Answer | str:
        if not self.up:
            return DROP
        if request.path == BATCH_PATH:
            if not self.batch_route:
                return Answer(404, {"message": "Not Found"})
            keys = [entry["idempotency_key"] for entry in request.json()["requests"]]
            self.batches.append(keys)
            results = [{"status_code": 201, "body": {"id": self._store(k)}} for k in keys]
            return Answer(200, {"results": results}, delay=self.delay)
        key = request.headers["idempotency-key"]
        return Answer(201, {"id": self._store(key)}, delay=self.delay)


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
        # The probe (the oldest log, alone) lands first; the next batch, one post, the rest.
        assert server.received[0] == "k0"
        assert sorted(server.received) == [f"k{i}" for i in range(6)]  # each sent once
        assert server.batches == [[f"k{i}" for i in range(1, 6)]]
        assert delivery.request_id_for_run("root-3") == server.ids["k3"]
        await delivery.aclose()


def _poster(url: str) -> Poster:
    return Poster(base_url=url, api_key="k", attempt_timeout=1.0, backoff_initial=0.01,
                  backoff_max=0.05, max_connections=4)


async def test_a_post_without_retry_makes_one_attempt(tmp_path: Path) -> None:
    # What the drain relies on: a batch's posts must not go on retrying after the round has
    # failed (they would land, out of order, beside the later probe).
    server = Switchable()
    async with _serving(server) as url:
        poster = _poster(url)
        result = await poster.post("/log-request", _body(0), headers={"Idempotency-Key": "k0"},
                                   what="log", budget=1.0, retry=False)
        assert (result.ok, result.transient, poster.failed_attempts) == (False, True, 1)
        retried = await poster.post("/log-request", _body(1), headers={"Idempotency-Key": "k1"},
                                    what="log", budget=0.3)
        assert not retried.ok and poster.failed_attempts > 2
        await poster.aclose()


@pytest.mark.parametrize("batch_route", [True, False])
async def test_the_drain_sends_batches_in_spool_order(tmp_path: Path, batch_route: bool) -> None:
    server = Switchable(batch_route=batch_route)
    async with _serving(server) as url:
        poster = _poster(url)
        landed: list[str] = []
        drain = SpoolDrain(tmp_path, poster, batch=2, probe_max=0.05,
                           on_landed=lambda key, body, request_id: landed.append(key))
        await drain.start()
        for i in range(6):
            drain.add(f"k{i}", _body(i))
        await _until(lambda: drain.failing)  # the server is down: the drain probes
        server.up = True
        await _until(lambda: drain.stats()["spool_pending"] == 0)
        # The probe, then batches of two: order holds between batches, not within one.
        groups = [server.received[:1], server.received[1:3], server.received[3:5],
                  server.received[5:]]
        assert [sorted(g) for g in groups] == [["k0"], ["k1", "k2"], ["k3", "k4"], ["k5"]]
        assert sorted(landed) == sorted(server.received)
        # One post per batch where the backend has the route; else one per log (after a
        # single 404 the drain never tries a batch again).
        assert server.batches == ([["k1", "k2"], ["k3", "k4"]] if batch_route else [])
        assert poster.batch_route is batch_route
        await drain.close()
        await poster.aclose()


async def test_the_drain_waits_for_a_slow_backend_instead_of_failing_it(tmp_path: Path) -> None:
    # Each spooled post gets a whole attempt (attempt_timeout), not a 50 ms sliver of a zero
    # budget: a backend that is up but slow with the backlog must not fail every post.
    server = Switchable(delay=0.15)
    async with _serving(server) as url:
        delivery = _delivery(url, tmp_path, attempt_timeout=2.0)
        await delivery.start()
        futures = [delivery.submit(_body(i), idempotency_key=f"k{i}") for i in range(3)]
        assert await asyncio.gather(*futures) == [None] * 3  # the server is down: spooled
        failed = delivery.stats()["failed_attempts_total"]
        server.up = True
        await _until(lambda: delivery.stats()["spool_pending"] == 0)
        assert delivery.stats()["failed_attempts_total"] == failed
        assert sorted(server.received) == ["k0", "k1", "k2"]  # each sent once
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


def _logs_pending() -> float:
    return REGISTRY.get_sample_value("promptserve_logs_pending") or 0.0


async def test_spool_survives_a_restart(tmp_path: Path) -> None:
    server = Switchable()
    pending = _logs_pending()
    async with _serving(server) as url:
        first = _delivery(url, tmp_path)
        await first.start()
        await asyncio.gather(*(first.submit(_body(i), idempotency_key=f"k{i}") for i in range(3)))
        await first.aclose()
        # Spooled logs are counted by spool_pending, not by the process that spooled them:
        # were they still pending, a restart would leave +3 with the old process and count
        # -3 in the new one.
        assert _logs_pending() == pending
        server.up = True
        second = _delivery(url, tmp_path)
        await second.start()
        await _until(lambda: second.stats()["spool_pending"] == 0)
        assert sorted(set(server.received)) == ["k0", "k1", "k2"]
        assert second.request_id_for_run("root-2") == server.ids["k2"]
        assert second.stats()["delivered_total"] == 3
        assert _logs_pending() == pending
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
