"""Prompt pages: templates with versions and labels, per-version statistics, diffs."""

from __future__ import annotations

import httpx
import pytest

from tests.utils.dashboard import chat, log_request, publish


@pytest.fixture
def prompt(api: httpx.Client, marker: str) -> dict:
    """A template with two versions; v2 carries `prod`, requests and scores on both."""
    name = f"stats-{marker}"
    publish(api, name, chat("user", "Tell me about {topic}."), commit_message="first cut")
    second = publish(
        api,
        name,
        chat("user", "Tell me briefly about {topic}."),
        commit_message="shorter",
        labels=["prod"],
    )
    plan = {
        1: [(0.1, "SUCCESS", 40), (0.3, "ERROR", None)],
        2: [(0.2, "SUCCESS", 80), (0.4, "SUCCESS", 90)],
    }
    for version, calls in plan.items():
        for latency, status, score in calls:
            request_id = log_request(
                api,
                latency=latency,
                status=status,
                prompt_name=name,
                prompt_version_number=version,
            )
            if score is not None:
                body = {"request_id": request_id, "score": score, "name": "quality"}
                assert api.post("/rest/track-score", json=body).status_code == 200
    return {"name": name, "id": second["id"]}


def test_prompt_list_shows_versions_and_labels(api: httpx.Client, prompt: dict) -> None:
    prompts = api.get("/api/prompts").json()["prompts"]
    found = next(p for p in prompts if p["name"] == prompt["name"])
    assert found["versions"] == 2 and found["latest_version"] == 2
    assert found["labels"] == {"prod": 2}


def test_per_version_statistics_say_which_version_did_better(
    api: httpx.Client, prompt: dict
) -> None:
    data = api.get(f"/api/prompts/{prompt['id']}").json()
    versions = {v["version"]: v for v in data["versions"]}
    assert [v["version"] for v in data["versions"]] == [2, 1]
    assert versions[2]["labels"] == ["prod"] and versions[1]["commit_message"] == "first cut"
    one, two = versions[1]["stats"], versions[2]["stats"]
    assert (one["requests"], one["errors"], one["error_rate"]) == (2, 1, 0.5)
    assert (two["requests"], two["error_rate"]) == (2, 0.0)
    assert one["scores"] == {"quality": {"average": 40.0, "count": 1}}
    assert two["scores"] == {"quality": {"average": 85.0, "count": 2}}
    # Linear interpolation between 200 and 400 ms, as percentile_cont does.
    assert two["p50_ms"] == pytest.approx(300, abs=2)
    assert two["p95_ms"] == pytest.approx(390, abs=2)
    assert data["charts"]["average_score"]["quality"] == [["v1", 40.0], ["v2", 85.0]]
    assert sum(day["requests"] for day in data["requests_per_day"]) == 4


def test_prompt_page_shows_the_table_and_svg_charts(
    browser_client: httpx.Client, prompt: dict
) -> None:
    page = browser_client.get(f"/dashboard/prompts/{prompt['id']}")
    assert page.status_code == 200
    assert "<svg" in page.text and "Average “quality” score per version" in page.text
    assert "85.0" in page.text and "50.0 %" in page.text
    assert "<script" not in page.text  # charts are drawn server-side


def test_diff_between_versions(
    api: httpx.Client, browser_client: httpx.Client, prompt: dict
) -> None:
    data = api.get(f"/api/prompts/{prompt['id']}/diff").json()
    assert (data["old"]["version"], data["new"]["version"]) == (1, 2)
    changed = [
        (line["kind"], line["text"])
        for line in data["diff"]
        if line["kind"] in ("added", "removed")
    ]
    assert changed == [
        ("removed", "-Tell me about {topic}."),
        ("added", "+Tell me briefly about {topic}."),
    ]
    page = browser_client.get(
        f"/dashboard/prompts/{prompt['id']}/diff", params={"old": 2, "new": 1}
    )
    assert page.status_code == 200 and "+Tell me about {topic}." in page.text
    missing = api.get(f"/api/prompts/{prompt['id']}/diff", params={"old": 9})
    assert missing.status_code == 404


def test_unknown_prompt_is_404(api: httpx.Client, browser_client: httpx.Client) -> None:
    assert api.get("/api/prompts/987654321").status_code == 404
    assert browser_client.get("/dashboard/prompts/987654321").status_code == 404
    assert api.get("/api/prompts/0").status_code == 400


def test_prompt_page_says_which_chains_serve_it_and_at_which_version(
    api: httpx.Client, browser_client: httpx.Client, marker: str
) -> None:
    name = f"served-{marker}"
    publish(api, name, chat("user", "About {topic}."))
    template_id = publish(api, name, chat("user", "Briefly about {topic}."))["id"]
    for version, route in ((1, "/old"), (1, "/both"), (2, "/both"), (2, "/new")):
        log_request(api, tags=[f"route:{route}"], prompt_name=name,
                    prompt_version_number=version)
    data = api.get(f"/api/prompts/{template_id}").json()
    served = {s["route"]: s["version"] for s in data["served_by"]}
    # Each route with the version its latest request was given, newest first.
    assert served == {"/new": 2, "/both": 2, "/old": 1}
    assert [s["route"] for s in data["served_by"]] == ["/new", "/both", "/old"]
    page = browser_client.get(f"/dashboard/prompts/{template_id}").text
    assert "Served by:" in page and ">/both</a> <span class=\"muted\">(v2," in page
