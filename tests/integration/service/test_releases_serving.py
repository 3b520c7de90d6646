"""Split release labels served by the real service and read from the real embedded backend:
weights, stickiness (two worker processes included), segments, a split change without a
restart, logs tagged with the release and arm, response metadata, odd caller values, and
simulated traffic judged by the backend (docs/RELEASES.md)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from promptlayer import PromptLayer
from scipy.stats import binom

from app.backend.store.engine import make_engine
from app.service import create_app
from chains import TEMPLATES_DIR
from tests.integration.service.conftest import (
    BACKEND_KEY,
    SERVICE_KEY,
    Service,
    service_settings,
    write_templates,
)
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.polling import eventually
from tests.utils.servers import free_port, serve_in_thread, wait_until_up

INPUT = {"input": {"product": "boats"}}
# The example template's user message, per version: the fake model echoes it back.
TEXTS = {1: "Write a one-sentence slogan for a company that makes {product}.",
         2: "Name three colours of {product}.",
         3: "Praise {product} in five words."}


def _publish(registry_url: str, version: int) -> None:
    """Version `version` of `example`, the label left where it is."""
    template = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    blueprint = template["blueprint"]
    blueprint["messages"][-1]["content"][0]["text"] = TEXTS[version]
    PromptLayer(api_key=BACKEND_KEY, base_url=registry_url).templates.publish({
        "prompt_name": "example", "prompt_template": blueprint,
        "metadata": template["metadata"], "commit_message": f"v{version}",
        "release_labels": [],
    })


class Releases:
    """The embedded backend's release API (`/promptlayer/rest/releases`)."""

    def __init__(self, url: str) -> None:
        self.base = f"{url}/promptlayer/rest/releases"
        self.headers = {"X-API-KEY": BACKEND_KEY}

    def put(self, arms: dict[int, int], *, control: int = 1,
            segments: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "arms": [{"version": v, "weight": w} for v, w in arms.items()], "control": control}
        if segments is not None:
            body["segments"] = segments
        answer = httpx.put(f"{self.base}/example/prod", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text
        split: dict[str, Any] = answer.json()
        return split

    def end(self) -> None:
        answer = httpx.delete(f"{self.base}/example/prod", headers=self.headers)
        # 404/409: there was no split to end.
        assert answer.status_code in (200, 204, 404, 409), answer.text

    def judgement(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.base}/example/prod/judgement", headers=self.headers)
        assert answer.status_code == 200, answer.text
        judged: dict[str, Any] = answer.json()
        return judged


def _invoke(client: httpx.Client, url: str, *, key: str | None = None,
            headers: dict[str, str] | None = None,
            configurable: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = dict(INPUT)
    if configurable is not None:
        body["config"] = {"configurable": configurable}
    sent = dict(headers or {})
    if key is not None:
        sent["X-PromptServe-Key"] = key
    answer = client.post(f"{url}/example/invoke", json=body, headers=sent)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _need_release_api(url: str) -> None:
    answer = httpx.get(f"{url}/promptlayer/rest/releases", headers={"X-API-KEY": BACKEND_KEY})
    if answer.status_code == 404:
        pytest.skip("the embedded backend has no release API yet")


def _served(body: dict[str, Any]) -> int:
    return int(body["metadata"]["promptlayer_prompt_versions"]["example"])


def _wait_for_release(client: httpx.Client, url: str, release_id: str | None) -> None:
    """Until the service serves release `release_id` (None: no split)."""

    def probe() -> bool | None:
        arms = _invoke(client, url)["metadata"]["promptlayer_release_arms"]
        current = arms["example"]["release_id"] if arms else None
        return True if current == release_id else None

    eventually(probe, timeout=15)


@pytest.fixture(scope="module")
def released(
    tmp_path_factory: pytest.TempPathFactory, fake_llm: tuple[FakeOpenAI, str]
) -> Iterator[Service]:
    """The service with a 0.2 s refresh, versions 1-3 of `example` (prod on 1)."""
    fake, llm_url = fake_llm
    settings = service_settings(tmp_path_factory.mktemp("releases"), llm_url,
                                refresh_interval_seconds=0.2, log_wait_seconds=5)
    app = create_app(settings)
    engine = make_engine(settings.sqlalchemy_url)
    with serve_in_thread(app) as url:
        _need_release_api(url)
        for version in (2, 3):
            _publish(f"{url}/promptlayer", version)
        yield Service(url, app, settings, fake, engine)
        Releases(url).end()
    engine.dispose()


@pytest.fixture
def releases(released: Service) -> Iterator[Releases]:
    api = Releases(released.url)
    yield api
    api.end()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


def test_shares_follow_the_weights_and_a_key_keeps_its_version(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    split = releases.put({1: 30, 2: 70})
    _wait_for_release(client, released.url, split["release_id"])
    rng = random.Random(18)
    keys = [f"user-{rng.getrandbits(64):x}" for _ in range(400)]
    served = {}
    for i, key in enumerate(keys):
        # Half by header, half by configurable: both name the caller.
        body = (_invoke(client, released.url, key=key) if i % 2 else
                _invoke(client, released.url, configurable={"release_key": key}))
        served[key] = _served(body)
        arms = body["metadata"]["promptlayer_release_arms"]
        assert arms == {"example": {"label": "prod", "version": served[key],
                                    "release_id": split["release_id"]}}
    counts = Counter(served.values())
    low, high = binom.interval(0.999, len(keys), 0.7)
    assert set(counts) == {1, 2} and low <= counts[2] <= high, counts
    # Sticky: the same key, again and again, by either way in.
    for key in keys[:25]:
        for way in range(4):
            body = (_invoke(client, released.url, key=key) if way % 2 else
                    _invoke(client, released.url, configurable={"release_key": key}))
            assert _served(body) == served[key]
    # The header wins over the body.
    key = next(k for k in keys if served[k] == 1)
    other = next(k for k in keys if served[k] == 2)
    body = _invoke(client, released.url, key=key, configurable={"release_key": other})
    assert _served(body) == 1


def test_without_a_key_each_request_draws_its_arm(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    split = releases.put({1: 50, 2: 50})
    _wait_for_release(client, released.url, split["release_id"])
    served = Counter(_served(_invoke(client, released.url)) for _ in range(60))
    assert set(served) == {1, 2}


def test_a_segment_is_served_by_its_own_arms(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    # The backend takes segment arms among the split's own versions.
    split = releases.put({1: 70, 3: 30}, segments={
        "key": "plan", "values": {"pro": [{"version": 3, "weight": 100}]}})
    _wait_for_release(client, released.url, split["release_id"])
    for i in range(20):
        key = f"seg-{i}"
        by_header = _invoke(client, released.url, key=key,
                            headers={"X-PromptServe-Metadata-plan": "pro"})
        by_body = _invoke(client, released.url, configurable={
            "release_key": key, "release_metadata": {"plan": "pro"}})
        assert _served(by_header) == _served(by_body) == 3
        free = _invoke(client, released.url, key=key,
                       configurable={"release_metadata": {"plan": "free"}})
        assert _served(free) in (1, 3)
        assert by_header["output"] == "echo: Praise boats in five words."


def test_a_split_change_is_served_without_a_restart(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    first = releases.put({1: 100, 2: 0})
    _wait_for_release(client, released.url, first["release_id"])
    assert {_served(_invoke(client, released.url, key=f"k{i}")) for i in range(30)} == {1}
    moved = releases.put({1: 0, 2: 100})
    assert moved["release_id"] != first["release_id"]
    _wait_for_release(client, released.url, moved["release_id"])
    assert {_served(_invoke(client, released.url, key=f"k{i}")) for i in range(30)} == {2}
    releases.end()
    _wait_for_release(client, released.url, None)
    body = _invoke(client, released.url, key="k1")
    assert _served(body) == 1  # the label stayed on the control
    assert body["metadata"]["promptlayer_release_arms"] == {}


def test_a_run_in_flight_keeps_its_arm(tmp_path: Path) -> None:
    fake = FakeOpenAI(stream_delay=0.2)  # the answer streams for ~1.5 s
    with serve_in_thread(fake.app) as llm_url:
        settings = service_settings(tmp_path, llm_url, refresh_interval_seconds=0.1)
        with serve_in_thread(create_app(settings)) as url, httpx.Client(timeout=30) as client:
            _need_release_api(url)
            _publish(f"{url}/promptlayer", 2)
            api = Releases(url)
            split = api.put({1: 100, 2: 0})
            _wait_for_release(client, url, split["release_id"])
            with httpx.stream("POST", f"{url}/example/stream", json=INPUT,
                              headers={"X-PromptServe-Key": "k"}, timeout=30) as stream:
                lines = stream.iter_lines()
                assert next(lines) == "event: metadata"  # the run has started
                moved = api.put({1: 0, 2: 100})
                time.sleep(0.6)  # several refreshes while the answer streams
                tail = [line for line in lines if line.startswith("data: ")][-1]
            summary = json.loads(tail.removeprefix("data: "))
            assert summary["promptlayer_prompt_versions"] == {"example": 1}
            assert summary["promptlayer_release_arms"]["example"]["release_id"] == \
                split["release_id"]
            _wait_for_release(client, url, moved["release_id"])
            assert _served(_invoke(client, url, key="k")) == 2


def test_the_log_is_tagged_with_release_and_arm_and_linked_to_the_version_served(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    split = releases.put({1: 50, 2: 50})
    _wait_for_release(client, released.url, split["release_id"])
    for i in range(12):
        body = _invoke(client, released.url, key=f"log-{i}")
        version = _served(body)
        request_id = body["metadata"]["promptlayer_request_id"]
        assert released.linked_prompt(request_id) == ("example", version)
        stored = released.stored_request(request_id)
        for tag in ("release:prod", f"arm:v{version}", "prompt:example",
                    f"prompt_version:{version}", "prompt_label:prod"):
            assert tag in stored["tags"], stored["tags"]
        assert stored["metadata"]["promptserve_release"] == split["release_id"]
        assert stored["metadata"]["promptserve_arm"] == f"v{version}"


def test_batch_and_streams_name_the_arm(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    split = releases.put({1: 50, 2: 50})
    _wait_for_release(client, released.url, split["release_id"])
    keys = [f"b-{i}" for i in range(6)]
    batch = client.post(f"{released.url}/example/batch", json={
        "inputs": [INPUT["input"]] * len(keys),
        "config": [{"configurable": {"release_key": k}} for k in keys]})
    assert batch.status_code == 200, batch.text
    runs = batch.json()["metadata"]["responses"]
    expected = {k: _served(_invoke(client, released.url, key=k)) for k in keys}
    for key, run in zip(keys, runs, strict=True):
        assert run["promptlayer_release_arms"]["example"]["version"] == expected[key]
        assert run["promptlayer_prompt_versions"] == {"example": expected[key]}
    for endpoint in ("stream", "stream_log", "stream_events"):
        with client.stream("POST", f"{released.url}/example/{endpoint}", json=INPUT,
                           headers={"X-PromptServe-Key": keys[0]}) as stream:
            data = [json.loads(line.removeprefix("data: ")) for line in stream.iter_lines()
                    if line.startswith("data: ") and "promptlayer_release_arms" in line]
        assert data, endpoint
        event = data[-1]
        summary = (event if endpoint == "stream" else event["data"]
                   if endpoint == "stream_events" else event["ops"][0]["value"])
        assert summary["promptlayer_release_arms"]["example"]["version"] == expected[keys[0]]


@pytest.mark.parametrize(
    ("config", "headers", "status"),
    [
        ({"release_key": 123}, {}, 422),
        ({"release_key": ["a"]}, {}, 422),
        ({"release_key": "k" * 5000}, {}, 422),
        ({"release_metadata": "pro"}, {}, 422),
        ({"release_metadata": {"plan": 3}}, {}, 422),
        ({}, {"X-PromptServe-Key": "k" * 5000}, 422),
        ({"release_key": None}, {}, 200),
        ({"release_key": ""}, {}, 200),
        ({"release_key": "\U0001f600\u202e\u0000 \ufeff"}, {}, 200),
        ({"release_key": "\ud800"}, {}, 422),
        ({}, {"X-PromptServe-Key": "\xff\xfe"}, 200),
        ({}, {"X-PromptServe-Metadata-plan": "x" * 600}, 422),
    ],
)
def test_odd_caller_values_are_answered_not_crashed_on(
    released: Service, releases: Releases, client: httpx.Client,
    config: dict[str, Any], headers: dict[str, str], status: int,
) -> None:
    releases.put({1: 50, 2: 50})
    # json.dumps writes a lone surrogate as its \ud800 escape, as a careless client would.
    raw = json.dumps({**INPUT, "config": {"configurable": config}})
    sent = {b"Content-Type": b"application/json",
            **{k.encode(): v.encode("utf-8") for k, v in headers.items()}}
    answer = client.post(f"{released.url}/example/invoke", content=raw, headers=sent)
    assert answer.status_code == status, answer.text


def test_other_chains_take_a_release_key_and_ignore_it(released: Service,
                                                       client: httpx.Client) -> None:
    body = {"input": {"product": "kites"}, "config": {"configurable": {"release_key": "k"}}}
    answer = client.post(f"{released.url}/critique/invoke", json=body,
                         headers={"X-PromptServe-Key": "k"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"]["promptlayer_release_arms"] == {}


def test_simulated_scores_judge_a_better_challenger(
    released: Service, releases: Releases, client: httpx.Client
) -> None:
    """The challenger's true mean is 10 points above the control's (sd 20): the backend's
    verdict turns "better" within a bounded number of scores."""
    split = releases.put({1: 50, 2: 50})
    _wait_for_release(client, released.url, split["release_id"])
    rng = random.Random(1818)
    means = {1: 60.0, 2: 70.0}
    scores = 0
    verdict = None
    # The statistics module's simulations need ~450 scores at this effect; 900 bounds it.
    while scores < 900:
        keys = [f"sim-{rng.getrandbits(64):x}" for _ in range(50)]
        batch = client.post(f"{released.url}/example/batch", json={
            "inputs": [INPUT["input"]] * len(keys),
            "config": [{"configurable": {"release_key": k}} for k in keys]})
        assert batch.status_code == 200, batch.text
        for run in batch.json()["metadata"]["responses"]:
            version = run["promptlayer_release_arms"]["example"]["version"]
            score = round(min(100.0, max(0.0, rng.gauss(means[version], 20))))
            posted = client.post(f"{released.url}/feedback", json={
                # No name: the score /feedback stores by default is the one judged.
                "request_id": run["promptlayer_request_id"], "score": score,
                "feedback_token": run["feedback_token"]})
            assert posted.status_code == 200, posted.text
            scores += 1
        judged = releases.judgement()
        comparisons = [c for c in judged["comparisons"] if c["version"] == 2]
        verdict = comparisons[0]["verdict"] if comparisons else None
        if verdict == "better":
            break
    assert verdict == "better", f"no verdict after {scores} scores: {judged}"
    print(f"verdict 'better' after {scores} scores")  # shown with -s


# -- two worker processes ---------------------------------------------------------------------


@pytest.fixture
def two_workers(tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]) -> Iterator[tuple[str, Path]]:
    """`promptserve serve --workers 2` on one SQLite file, refreshing every 0.3 s."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "OPENAI_BASE_URL": f"{fake_llm[1]}/v1",
        "OPENAI_API_KEY": "sk-test",
        "PROMPTLAYER_API_KEY": BACKEND_KEY,
        "PROMPTSERVE_API_KEYS": SERVICE_KEY,
        "PROMPTSERVE_DATA_DIR": str(tmp_path / "data"),
        "PROMPTSERVE_TEMPLATES_DIR": str(write_templates(tmp_path / "seed")),
        "PROMPTSERVE_REFRESH_INTERVAL_SECONDS": "0.3",
    }
    env.pop("DATABASE_URL", None)
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


def _pids(log: Path) -> dict[str, int]:
    """Worker pid per X-Request-Id, from the access log lines."""
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("logger") == "promptserve.access" and entry.get("request_id"):
                found[entry["request_id"]] = int(entry["pid"])
    return found


def test_two_workers_serve_a_key_the_same_version(two_workers: tuple[str, Path]) -> None:
    url, log = two_workers
    _need_release_api(url)
    _publish(f"{url}/promptlayer", 2)
    split = Releases(url).put({1: 50, 2: 50})
    keys = [f"w-{i}" for i in range(12)]
    seen: dict[str, dict[int, set[int]]] = {k: {} for k in keys}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for key in keys:
            rid = uuid.uuid4().hex
            # A new connection each time: the kernel hands them to either worker.
            answer = httpx.post(f"{url}/example/invoke", json=INPUT,
                                headers={"X-PromptServe-Key": key, "X-Request-Id": rid})
            assert answer.status_code == 200, answer.text
            arms = answer.json()["metadata"]["promptlayer_release_arms"]
            if arms.get("example", {}).get("release_id") != split["release_id"]:
                continue  # this worker has not refreshed yet
            pid = eventually(lambda: _pids(log).get(rid), timeout=5)  # noqa: B023
            seen[key].setdefault(pid, set()).add(arms["example"]["version"])
        if all(len(by_pid) == 2 for by_pid in seen.values()):
            break
    both = {k: v for k, v in seen.items() if len(v) == 2}
    assert len(both) >= len(keys) // 2, f"both workers should serve most keys: {seen}"
    for key, by_pid in both.items():
        versions = set().union(*by_pid.values())
        assert len(versions) == 1, f"{key} got {by_pid} from the two workers"
    assert {next(iter(set().union(*v.values()))) for v in both.values()} == {1, 2}
