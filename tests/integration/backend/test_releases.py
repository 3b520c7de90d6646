"""A/B releases on the embedded backend over HTTP (docs/RELEASES.md): splits resolved by the
SDK's label reads, segments, the history of every change, promote / rollback / end, bad
bodies, judgement of seeded logs and scores, and the guardrail's rollback."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from promptlayer import PromptLayer
from scipy.stats import binom

from app.backend.store.schema import release_splits
from tests.integration.backend.conftest import API_KEY, OPENAI_MODEL, Backend, chat

HEADERS = {"X-API-KEY": API_KEY}
TAIL = hashlib.sha256(API_KEY.encode()).hexdigest()[-4:]
NOW = 1_700_000_000.0


def publish(pl: PromptLayer, name: str, text: str, labels: list[str] | None = None) -> int:
    body: dict[str, Any] = {
        "prompt_name": name, "prompt_template": chat(text), "metadata": OPENAI_MODEL
    }
    if labels:
        body["release_labels"] = labels
    return int(pl.templates.publish(body)["version_number"])


def versions(pl: PromptLayer, name: str, count: int, labels: list[str] | None = None) -> None:
    """Versions 1..count; `labels` on version 1."""
    publish(pl, name, "v1 {topic}", labels or ["prod"])
    for n in range(2, count + 1):
        publish(pl, name, f"v{n} {{topic}}")


def path(backend: Backend, name: str, label: str = "prod", *rest: str) -> str:
    parts = [quote(name, safe=""), quote(label, safe=""), *rest]
    return f"{backend.url}/rest/releases/" + "/".join(parts)


def put(backend: Backend, name: str, body: Any, label: str = "prod", **headers: str) -> Any:
    return httpx.put(path(backend, name, label), json=body, headers={**HEADERS, **headers})


def arms(*pairs: tuple[int, int]) -> list[dict[str, int]]:
    return [{"version": v, "weight": w} for v, w in pairs]


def release(backend: Backend, name: str, label: str = "prod") -> dict[str, Any]:
    answer = httpx.get(path(backend, name, label), headers=HEADERS)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def within_binomial(counts: Counter[int], total: int, weights: dict[int, int]) -> None:
    for version, weight in weights.items():
        low, high = binom.interval(0.999, total, weight / 100)
        assert low <= counts[version] <= high, (version, counts, total)


def test_sdk_label_reads_follow_the_weights(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 3)
    assert put(backend, name, {"arms": arms((1, 20), (2, 30), (3, 50))}).status_code == 200
    total = 400
    counts = Counter(pl.templates.get(name, {"label": "prod"})["version"] for _ in range(total))
    assert set(counts) <= {1, 2, 3}
    within_binomial(counts, total, {1: 20, 2: 30, 3: 50})
    # What knows nothing of splits sees the control: the label row, the list, versions.
    listed = httpx.get(f"{backend.url}/prompt-templates", params={"label": "prod", "name": name},
                       headers=HEADERS).json()
    assert [item["version"] for item in listed["items"]] == [1]
    assert pl.templates.get(name, {"version": 2})["version"] == 2
    # A weight of 0 is never served.
    assert put(backend, name, {"arms": arms((1, 0), (3, 100))}).status_code == 200
    assert {pl.templates.get(name, {"label": "prod"})["version"] for _ in range(30)} == {3}


def test_segments_by_metadata_filters(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 2)
    spec = {
        "arms": arms((1, 50), (2, 50)),
        "segments": {"key": "plan", "values": {"pro": arms((2, 100)), "free": arms((1, 100))}},
    }
    answer = put(backend, name, spec)
    assert answer.status_code == 200, answer.text
    assert answer.json()["segments"] == spec["segments"]

    def served(filters: dict[str, Any] | None, n: int) -> Counter[int]:
        params: dict[str, Any] = {"label": "prod"}
        if filters is not None:
            params["metadata_filters"] = filters
        return Counter(pl.templates.get(name, params)["version"] for _ in range(n))

    assert served({"plan": "pro"}, 40) == Counter({2: 40})
    assert served({"plan": "free"}, 40) == Counter({1: 40})
    total = 300
    within_binomial(served({"plan": "team"}, total), total, {1: 50, 2: 50})
    within_binomial(served(None, total), total, {1: 50, 2: 50})


def rows(backend: Backend, name: str, label: str = "prod") -> list[dict[str, Any]]:
    return list(reversed(release(backend, name, label)["history"]))  # oldest first


def test_history_holds_every_change(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 3)
    publish(pl, name, "v4", ["prod"])  # a publish moves the label: 1 → 4
    split = put(backend, name, {"arms": arms((4, 50), (2, 50))},
                **{"X-PromptServe-Client": "cli"}).json()
    assert (split["control"], split["template"], split["label"]) == (4, name, "prod")
    same = put(backend, name, {"arms": arms((4, 50), (2, 50))}).json()  # no change, no row
    assert same["release_id"] == split["release_id"]
    guarded = put(backend, name, {"arms": arms((4, 50), (2, 50)), "guardrail": True}).json()
    assert guarded["release_id"] == split["release_id"]  # same experiment
    reweighed = put(backend, name, {"arms": arms((4, 70), (2, 30))},
                    **{"X-PromptServe-Client": "dashboard"}).json()
    assert reweighed["release_id"] != split["release_id"]
    assert httpx.post(path(backend, name, "prod", "rollback"), headers=HEADERS).json() == {
        "version": 4
    }
    put(backend, name, {"arms": arms((4, 50), (3, 50))})
    promoted = httpx.post(path(backend, name, "prod", "promote"), json={"version": 3},
                          headers=HEADERS)
    assert promoted.json() == {"version": 3}
    put(backend, name, {"arms": arms((3, 50), (1, 50))})
    ended = httpx.delete(path(backend, name), headers=HEADERS)
    assert ended.json() == {"version": 3}
    state = release(backend, name)
    assert (state["split"], state["version"]) == (None, 3)

    put(backend, name, {"arms": arms((3, 50), (2, 50))})
    publish(pl, name, "v5", ["prod"])  # a publish moves a split label: the split ends
    assert release(backend, name)["split"] is None

    history = rows(backend, name)
    assert [r["action"] for r in history] == [
        "move", "move", "split", "split", "split", "rollback", "split", "promote", "split",
        "end", "split", "move",
    ]
    assert history[0]["before"] is None and history[0]["after"] == {"version": 1}
    assert (history[1]["before"], history[1]["after"]) == ({"version": 1}, {"version": 4})
    assert history[2]["before"] == {"version": 4} and history[2]["after"]["arms"] == arms(
        (4, 50), (2, 50)
    )
    assert history[3]["after"]["guardrail"] is True
    assert history[5]["after"] == {"version": 4} and history[5]["before"]["arms"]
    assert history[7]["after"] == {"version": 3}
    assert history[9]["after"] == {"version": 3}
    assert history[11]["before"]["arms"] == arms((3, 50), (2, 50))
    assert history[11]["after"] == {"version": 5}
    assert all(r["template"] == name and r["label"] == "prod" and r["at"] for r in history)
    assert history[2]["by"] == f"cli (…{TAIL})"
    assert history[4]["by"] == f"dashboard (…{TAIL})"
    assert {r["by"] for i, r in enumerate(history) if i not in (2, 4)} == {f"api key …{TAIL}"}


def test_hosted_label_endpoints(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 3)
    prompt_id = pl.templates.get(name)["id"]
    listed = httpx.get(f"{backend.url}/prompt-templates/{quote(name, safe='')}/labels",
                       headers=HEADERS).json()["release_labels"]
    assert [(x["release_label"], x["prompt_version_number"]) for x in listed] == [("prod", 1)]
    created = httpx.post(f"{backend.url}/prompts/{prompt_id}/label",
                         json={"name": "staging", "prompt_version_number": 2}, headers=HEADERS)
    assert created.status_code == 200, created.text
    label = created.json()
    assert (label["name"], label["prompt_id"]) == ("staging", prompt_id)
    assert set(label) == {"created_at", "id", "name", "prompt_id", "prompt_version_id"}
    again = httpx.post(f"{backend.url}/prompts/{prompt_id}/label",
                       json={"name": "staging", "prompt_version_number": 1}, headers=HEADERS)
    assert again.status_code == 409
    moved = httpx.patch(f"{backend.url}/prompt-labels/{label['id']}",
                        json={"prompt_version_number": 3}, headers=HEADERS)
    assert moved.status_code == 200 and moved.json()["created_at"] == label["created_at"]
    assert pl.templates.get(name, {"label": "staging"})["version"] == 3
    # A split label moved by PATCH stops being split.
    put(backend, name, {"arms": arms((3, 50), (1, 50))}, label="staging")
    httpx.patch(f"{backend.url}/prompt-labels/{label['id']}", json={"prompt_version_number": 2},
                headers=HEADERS)
    assert release(backend, name, "staging")["split"] is None
    deleted = httpx.delete(f"{backend.url}/prompt-labels/{label['id']}", headers=HEADERS)
    assert deleted.status_code == 204
    assert release(backend, name, "staging")["version"] is None
    history = rows(backend, name, "staging")
    assert [r["action"] for r in history] == ["move", "move", "split", "move", "move"]
    assert [r["after"] and r["after"].get("version", r["after"].get("control"))
            for r in history] == [2, 3, 3, 2, None]
    for bad in ({"prompt_version_number": "2"}, {"prompt_version_number": 99}, {}):
        answer = httpx.patch(f"{backend.url}/prompt-labels/{listed[0]['release_label_id']}",
                             json=bad, headers=HEADERS)
        assert answer.status_code in (400, 404), answer.text
        assert "message" in answer.json()
    assert httpx.delete(f"{backend.url}/prompt-labels/{label['id']}",
                        headers=HEADERS).status_code == 404


def test_conflicts_and_unknowns(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 2)
    for method, rest in [("POST", "promote"), ("POST", "rollback"), ("DELETE", None)]:
        url = path(backend, name, "prod", *([rest] if rest else []))
        answer = httpx.request(method, url, headers=HEADERS)
        assert answer.status_code == 409, (method, rest, answer.text)
    assert httpx.get(path(backend, name, "prod", "judgement"), headers=HEADERS).status_code == 404
    missing = httpx.get(path(backend, "no-such-template"), headers=HEADERS)
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    assert release(backend, name, "beta") == {"split": None, "version": None, "history": []}
    # Starting a split of a label that points nowhere needs a control.
    assert put(backend, name, {"arms": arms((1, 50), (2, 50))}, label="beta").status_code == 400
    assert put(backend, name, {"arms": arms((1, 50), (2, 50)), "control": 2},
               label="beta").status_code == 200
    assert release(backend, name, "beta")["version"] == 2
    put(backend, name, {"arms": arms((1, 50), (2, 50))})
    no_winner = httpx.post(path(backend, name, "prod", "promote"), json={}, headers=HEADERS)
    assert no_winner.status_code == 409 and "better" in no_winner.json()["message"]
    not_an_arm = httpx.post(path(backend, name, "prod", "promote"), json={"version": 7},
                            headers=HEADERS)
    assert not_an_arm.status_code == 400
    assert httpx.get(f"{backend.url}/rest/releases", headers={}).status_code == 401
    listed = httpx.get(f"{backend.url}/rest/releases", headers=HEADERS).json()["releases"]
    assert {(s["template"], s["label"]) for s in listed} >= {(name, "prod"), (name, "beta")}


BAD_BODIES: list[tuple[Any, str]] = [
    ({"arms": arms((1, 50), (2, 40))}, "sum to 100"),
    ({"arms": arms((1, 50), (9, 50))}, "no version 9"),
    ({"arms": arms((1, 50), (1, 50))}, "more than once"),
    ({"arms": arms((1, 100))}, "2 to"),
    ({"arms": []}, "arms"),
    ({"arms": [{"version": 1, "weight": 50.5}, {"version": 2, "weight": 49.5}]}, "weight"),
    ({"arms": [{"version": 1, "weight": "50"}, {"version": 2, "weight": 50}]}, "arms.0.weight"),
    ({"arms": [{"version": 1, "weight": True}, {"version": 2, "weight": 99}]}, "weight"),
    ({"arms": [{"version": 10**30, "weight": 50}, {"version": 2, "weight": 50}]}, "version"),
    ({"arms": [{"version": 1, "weight": 10**30}, {"version": 2, "weight": -(10**30)}]}, "weight"),
    ({"arms": [{"version": 1, "weight": 150}, {"version": 2, "weight": -50}]}, "weight"),
    ({"arms": [{"version": "1", "weight": 50}, {"version": 2, "weight": 50}]}, "version"),
    ({"arms": [{"version": 1}, {"version": 2, "weight": 50}]}, "arms.0"),
    ({"arms": [1, 2]}, "arms.0"),
    ({"arms": {"1": 50, "2": 50}}, "arms"),
    ({}, "arms"),
    ({"weights": {"1": 50}}, "weights"),
    ({"arms": arms((1, 50), (2, 50)), "control": 3}, "control"),
    ({"arms": arms((1, 50), (2, 50)), "control": "1"}, "control"),
    ({"arms": arms((1, 50), (2, 50)), "alpha": 2}, "alpha"),
    ({"arms": arms((1, 50), (2, 50)), "alpha": "0.05"}, "alpha"),
    ({"arms": arms((1, 50), (2, 50)), "guardrail": "yes"}, "guardrail"),
    ({"arms": arms((1, 50), (2, 50)), "segments": []}, "segments"),
    ({"arms": arms((1, 50), (2, 50)), "segments": {"key": "", "values": {}}}, "segments.key"),
    ({"arms": arms((1, 50), (2, 50)),
      "segments": {"key": "plan", "values": {"pro": arms((3, 100))}}}, "segments.values.pro"),
    ({"arms": arms((1, 50), (2, 50)),
      "segments": {"key": "plan", "values": {"pro": arms((1, 60))}}}, "sum to 100"),
    ({"arms": arms((1, 50), (2, 50)), "segments": {"key": "plan", "values": "x"}}, "values"),
    ([1, 2], "object"),
]


def test_bad_bodies_answer_400(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 3)
    for body, words in BAD_BODIES:
        answer = put(backend, name, body)
        assert answer.status_code == 400, (body, answer.text)
        assert words in answer.json()["message"], (body, answer.json())
    raw = httpx.put(path(backend, name), content=b'{"arms": [', headers=HEADERS)
    assert raw.status_code == 400
    for body in ({"version": "2"}, {"version": 10**40}, {"version": True}, {"versions": 2}):
        answer = httpx.post(path(backend, name, "prod", "promote"), json=body, headers=HEADERS)
        assert answer.status_code == 400, (body, answer.text)
    assert release(backend, name)["history"][0]["action"] == "move"  # nothing was split


# --------------------------------------------------------------- judging, seeded data


def log(backend: Backend, name: str, version: int, release_id: str, *, error: bool = False,
        client: httpx.Client) -> int:
    body = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": {"type": "chat", "messages": []},
        "output": {"type": "chat", "messages": []},
        "request_start_time": NOW,
        "request_end_time": NOW + 0.25,
        "input_tokens": 10,
        "output_tokens": 5,
        "status": "ERROR" if error else "SUCCESS",
        "metadata": {"promptserve_release": release_id, "promptserve_arm": f"v{version}"},
        "prompt_name": name,
        "prompt_version_number": version,
        "tags": ["release:prod", f"arm:v{version}"],
    }
    answer = client.post(f"{backend.url}/log-request", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def score(backend: Backend, request_id: int, value: int, *, client: httpx.Client) -> None:
    answer = client.post(f"{backend.url}/library-track-score",
                         json={"request_id": request_id, "score": value, "name": "default"})
    assert answer.status_code == 200, answer.text


def seed(backend: Backend, name: str, release_id: str, means: dict[int, float], n: int,
         seed_value: int, *, errors: dict[int, int] | None = None) -> None:
    """n scored requests per arm, scores ~ N(mean, 10) clipped to 0-100, interleaved."""
    rng = np.random.default_rng(seed_value)
    errors = errors or {}
    with httpx.Client(headers=HEADERS) as client:
        for i in range(n):
            for version, mean in means.items():
                request_id = log(backend, name, version, release_id, client=client,
                                 error=i < errors.get(version, 0))
                value = int(np.clip(round(rng.normal(mean, 10)), 0, 100))
                score(backend, request_id, value, client=client)


def judgement(backend: Backend, name: str, label: str = "prod") -> dict[str, Any]:
    answer = httpx.get(path(backend, name, label, "judgement"), headers=HEADERS)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_judgement_of_seeded_scores(pl: PromptLayer, backend: Backend, name: str) -> None:
    versions(pl, name, 2)
    split = put(backend, name, {"arms": arms((1, 50), (2, 50))}).json()
    seed(backend, name, split["release_id"], {1: 50.0, 2: 70.0}, 60, seed_value=7,
         errors={1: 3})
    with httpx.Client(headers=HEADERS) as client:
        # Not of this release (another id, no link): never counted.
        log(backend, name, 2, "another-release", client=client)
        unscored = log(backend, name, 1, split["release_id"], client=client)
        other = client.post(f"{backend.url}/library-track-score",
                            json={"request_id": unscored, "score": 0, "name": "other"})
        assert other.status_code == 200
    judged = judgement(backend, name)
    assert judged["split"] == split
    control, challenger = judged["arms"]
    assert (control["version"], control["role"], challenger["version"], challenger["role"]) == (
        1, "control", 2, "challenger"
    )
    assert (control["requests"], control["feedback"], control["errors"]) == (61, 60, 3)
    assert (challenger["requests"], challenger["feedback"], challenger["errors"]) == (60, 60, 0)
    assert challenger["latency_p50_ms"] == pytest.approx(250, abs=1)
    assert challenger["tokens_total"] == 60 * 15
    assert challenger["mean_score"] > control["mean_score"] + 10
    (comparison,) = judged["comparisons"]
    assert (comparison["version"], comparison["verdict"]) == (2, "better")
    assert comparison["comparison"]["interval"]["low"] > 0
    assert "v2" in comparison["explanation"]
    series = {entry["version"]: entry for entry in judged["series"]}
    assert set(series) == {1, 2} and series[1]["role"] == "control"
    last = series[2]["points"][-1]
    assert last["feedback"] == 60 and last["mean"] == pytest.approx(challenger["mean_score"])
    assert last["interval"]["low"] < last["mean"] < last["interval"]["high"]

    # The look is kept with the split: the verdict carries to the next judgement.
    def looks(c: sa.Connection) -> Any:
        return c.scalar(sa.select(release_splits.c.looks)
                        .where(release_splits.c.release_id == split["release_id"]))

    assert backend.read(looks)["v2"]["verdict"] == "better"
    assert judgement(backend, name)["comparisons"][0]["verdict"] == "better"

    promoted = httpx.post(path(backend, name, "prod", "promote"), json={}, headers=HEADERS)
    assert promoted.json() == {"version": 2}
    state = release(backend, name)
    assert (state["split"], state["version"], state["history"][0]["action"]) == (
        None, 2, "promote"
    )
    assert pl.templates.get(name, {"label": "prod"})["version"] == 2


def wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_guardrail_rolls_back_a_bad_challenger(
    pl: PromptLayer, backend: Backend, name: str
) -> None:
    guarded, unguarded = name, name + "-unguarded"
    for template in (guarded, unguarded):
        versions(pl, template, 2)
    on = put(backend, guarded, {"arms": arms((1, 50), (2, 50)), "guardrail": True}).json()
    off = put(backend, unguarded, {"arms": arms((1, 50), (2, 50))}).json()
    assert (on["guardrail"], off["guardrail"]) == (True, False)
    seed(backend, unguarded, off["release_id"], {1: 80.0, 2: 40.0}, 40, seed_value=3)
    seed(backend, guarded, on["release_id"], {1: 80.0, 2: 40.0}, 40, seed_value=3)

    wait_for(lambda: release(backend, guarded)["split"] is None)
    state = release(backend, guarded)
    top = state["history"][0]
    assert (state["version"], top["action"], top["by"]) == (1, "guardrail_rollback", "guardrail")
    assert "mean score of v2" in top["reason"] and top["after"] == {"version": 1}
    assert top["before"]["release_id"] == on["release_id"]
    # Off by default: the same bad challenger stays while the guardrail is off.
    assert release(backend, unguarded)["split"] == off
