"""Release pages against a real backend: JSON twins, the HTML page, and the CSRF-safe forms."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.utils.releases import release_path, seed_release


@pytest.fixture
def release(api: httpx.Client, marker: str) -> dict[str, Any]:
    """`team/release-<marker>` · prod split 50/50 between v1 and v2, v2 scoring far higher."""
    name = f"team/release-{marker}"
    split = seed_release(api, name)
    return {"name": name, "split": split}


def _page_path(name: str, label: str = "prod") -> str:
    return f"/dashboard/releases/{quote(name, safe='')}/{label}"


def _twin_path(name: str, label: str = "prod") -> str:
    return f"/api/releases/{quote(name, safe='')}/{label}"


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_twin_has_arms_verdict_series_and_history(
    api: httpx.Client, release: dict[str, Any]
) -> None:
    data = api.get(_twin_path(release["name"])).json()
    assert data["template"] == release["name"] and data["label"] == "prod"
    assert data["split"]["release_id"] == release["split"]["release_id"]
    arms = {a["version"]: a for a in data["arms"]}
    assert [a["version"] for a in data["arms"]] == [1, 2]
    assert arms[1]["role"] == "control" and arms[2]["role"] == "challenger"
    assert arms[1]["weight"] == arms[2]["weight"] == 50
    assert arms[1]["requests"] == arms[2]["requests"] == 15
    assert arms[1]["feedback"] == arms[2]["feedback"] == 15
    assert arms[2]["mean_score"] == pytest.approx(85.0)
    assert arms[2]["mean_score_interval"]["low"] < 85 < arms[2]["mean_score_interval"]["high"]
    assert arms[1]["latency_p95_ms"] > arms[1]["latency_p50_ms"] > 0
    [comparison] = data["comparisons"]
    assert comparison["version"] == 2 and comparison["verdict"] == "better"
    assert comparison["explanation"].startswith("Better: v2 scores higher than v1")
    assert arms[2]["verdict"] == "better"
    assert {entry["version"] for entry in data["series"]} == {1, 2}
    assert [row["action"] for row in data["history"]][:1] == ["split"]


def test_list_twin_names_the_split(api: httpx.Client, release: dict[str, Any]) -> None:
    releases = api.get("/api/releases").json()["releases"]
    found = next(r for r in releases if r["template"] == release["name"])
    assert found["label"] == "prod" and found["arms_text"] == "v1 50 % (control) · v2 50 %"


def test_page_shows_arms_chart_verdict_and_forms(
    api: httpx.Client, browser_client: httpx.Client, release: dict[str, Any]
) -> None:
    page = browser_client.get(_page_path(release["name"]))
    assert page.status_code == 200, page.text
    explanation = api.get(_twin_path(release["name"])).json()["comparisons"][0]["explanation"]
    assert html.escape(explanation, quote=False) in page.text
    assert len(re.findall(r'<path d="M[^"]*"[^>]*class="mean"', page.text)) == 2
    assert 'data-version="1"' in page.text and 'data-version="2"' in page.text
    assert "/promote" in page.text and "/rollback" in page.text
    assert "<script" not in page.text
    listing = browser_client.get("/dashboard/releases")
    assert listing.status_code == 200 and html.escape(release["name"]) in listing.text


def test_pages_and_twins_need_sign_in(backend: Any, release: dict[str, Any]) -> None:
    with httpx.Client(base_url=backend.url) as anonymous:
        page = anonymous.get(_page_path(release["name"]))
        assert page.status_code == 303 and "/dashboard/login?next=" in page.headers["location"]
        assert anonymous.get(_twin_path(release["name"])).status_code == 401
        assert anonymous.get("/api/releases").status_code == 401
        posted = anonymous.post(_page_path(release["name"]) + "/rollback", data={"csrf": "x"})
        assert posted.status_code == 303 and "/dashboard/login" in posted.headers["location"]


def test_forms_refuse_a_missing_or_wrong_csrf_token(
    api: httpx.Client, browser_client: httpx.Client, release: dict[str, Any]
) -> None:
    path = _page_path(release["name"])
    assert browser_client.post(path + "/promote", data={"version": "2"}).status_code == 403
    wrong = {"version": "2", "csrf": "0" * 40}
    assert browser_client.post(path + "/promote", data=wrong).status_code == 403
    assert browser_client.post(path + "/rollback", data={}).status_code == 403
    state = api.get(release_path(release["name"], "prod")).json()
    assert state["split"] is not None and state["version"] == 1


def test_promote_from_the_page_moves_the_label(
    api: httpx.Client, browser_client: httpx.Client, release: dict[str, Any]
) -> None:
    path = _page_path(release["name"])
    token = _csrf(browser_client.get(path))
    answer = browser_client.post(path + "/promote", data={"csrf": token, "version": "2"})
    assert answer.status_code == 303 and answer.headers["location"].endswith(path)
    state = api.get(release_path(release["name"], "prod")).json()
    assert state["split"] is None and state["version"] == 2
    promoted = state["history"][0]
    assert promoted["action"] == "promote" and promoted["by"].startswith("dashboard (…")
    again = browser_client.get(path)
    assert again.status_code == 200 and "Not split" in again.text and "points at v2" in again.text
    # Promoting once more: the split is gone, so the page says why, at the service's status.
    refused = browser_client.post(path + "/promote", data={"csrf": token, "version": "2"})
    assert refused.status_code == 409 and 'class="error"' in refused.text


def test_rollback_from_the_page_returns_to_the_control(
    api: httpx.Client, browser_client: httpx.Client, release: dict[str, Any]
) -> None:
    path = _page_path(release["name"])
    token = _csrf(browser_client.get(path))
    answer = browser_client.post(path + "/rollback", data={"csrf": token})
    assert answer.status_code == 303
    state = api.get(release_path(release["name"], "prod")).json()
    assert state["split"] is None and state["version"] == 1
    assert state["history"][0]["action"] == "rollback"


def test_prompt_page_links_to_its_releases(
    api: httpx.Client, browser_client: httpx.Client, release: dict[str, Any]
) -> None:
    prompts = api.get("/api/prompts").json()["prompts"]
    template_id = next(p["id"] for p in prompts if p["name"] == release["name"])
    page = browser_client.get(f"/dashboard/prompts/{template_id}")
    assert f'href="/dashboard/releases/{release["name"]}/prod"' in page.text
    # And the release page links back to the prompt.
    assert (
        f'href="/dashboard/prompts/{template_id}"'
        in browser_client.get(_page_path(release["name"])).text
    )


def test_unknown_template_is_a_404_page_and_twin(
    api: httpx.Client, browser_client: httpx.Client, marker: str
) -> None:
    assert api.get(_twin_path(f"nope-{marker}")).status_code == 404
    page = browser_client.get(_page_path(f"nope-{marker}"))
    assert page.status_code == 404 and 'class="error"' in page.text
