"""The request list (filters, paging) and one request in full, as JSON twin and as page."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from tests.utils.dashboard import chat, log_request, publish


def ids(client: httpx.Client, **params: object) -> list[int]:
    answer = client.get("/api/requests", params=params)
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["requests"]]


def test_list_is_newest_first_and_filters_by_tag_route_endpoint_chain(
    api: httpx.Client, marker: str
) -> None:
    tags = [f"chain:{marker}", "endpoint:invoke", f"route:/{marker}"]
    first = log_request(api, tags=tags)
    second = log_request(api, tags=[f"chain:{marker}", "endpoint:stream", f"route:/{marker}"])
    other = log_request(api, tags=[f"chain:{marker}-other"])
    assert ids(api, chain=marker) == [second, first]
    assert ids(api, route=f"/{marker}", endpoint="invoke") == [first]
    assert ids(api, tag=f"chain:{marker}-other") == [other]
    row = api.get("/api/requests", params={"chain": marker}).json()["requests"][0]
    assert row["route"] == f"/{marker}" and row["endpoint"] == "stream"
    # Tags in the documented order (route, endpoint, chain), not alphabetically.
    assert row["tags"] == [f"route:/{marker}", "endpoint:stream", f"chain:{marker}"]
    assert (row["input_excerpt"], row["output_excerpt"]) == ("hello", "hi")
    assert row["status"] == "SUCCESS" and row["model"] == "gpt-4o-mini"
    assert 400 <= row["latency_ms"] <= 600


def test_filters_by_prompt_version_status_score_time_and_text(
    api: httpx.Client, marker: str
) -> None:
    name = f"dash-{marker}"
    for text in ("one", "two"):
        publish(api, name, chat("user", text))
    tag = [f"chain:{marker}"]
    v1 = log_request(api, tags=tag, prompt_name=name, prompt_version_number=1)
    v2 = log_request(api, tags=tag, prompt_name=name, prompt_version_number=2, status="ERROR")
    old = log_request(api, tags=tag, text=f"needle {marker}", start=1_600_000_000)
    api.post("/rest/track-score", json={"request_id": v1, "score": 90, "name": "stars"})
    api.post("/rest/track-score", json={"request_id": v2, "score": 20, "name": "stars"})
    assert ids(api, prompt=name) == [v2, v1]
    assert ids(api, prompt=name, version=1) == [v1]
    assert ids(api, prompt="no-such-prompt") == []
    assert ids(api, chain=marker, status="error") == [v2]
    assert ids(api, chain=marker, score_min=50) == [v1]
    assert ids(api, chain=marker, score_name="stars", score_max=30) == [v2]
    assert ids(api, chain=marker, until="2021-01-01T00:00") == [old]
    assert ids(api, chain=marker, since=datetime.now(UTC).date().isoformat()) == [v2, v1]
    assert ids(api, q=f"NEEDLE {marker}") == [old]


def test_keyset_paging_walks_the_whole_list_both_ways(api: httpx.Client, marker: str) -> None:
    made = [log_request(api, tags=[f"chain:{marker}"]) for _ in range(5)]
    newest_first = made[::-1]
    page = api.get("/api/requests", params={"chain": marker, "limit": 2}).json()
    seen = [r["id"] for r in page["requests"]]
    assert page["newer_than"] is None
    while page["older_than"] is not None:
        params = {"chain": marker, "limit": 2, "before": page["older_than"]}
        page = api.get("/api/requests", params=params).json()
        seen += [r["id"] for r in page["requests"]]
    assert seen == newest_first
    back = api.get("/api/requests", params={"chain": marker, "limit": 2, "after": made[0]}).json()
    assert [r["id"] for r in back["requests"]] == [made[2], made[1]]
    assert back["newer_than"] == made[2]


def test_bad_filters_answer_400_with_the_parameter_named(
    api: httpx.Client, browser_client: httpx.Client
) -> None:
    for params, word in (
        ({"status": "bogus"}, "status"),
        ({"score_min": "101"}, "score_min"),
        ({"since": "yesterday"}, "since"),
        ({"version": "2"}, "version"),
        ({"limit": "x"}, "limit"),
    ):
        answer = api.get("/api/requests", params=params)
        assert answer.status_code == 400 and word in answer.json()["message"], params
    page = browser_client.get("/dashboard/", params={"status": "bogus"})
    assert page.status_code == 400 and "status: one of" in page.text


def test_one_request_in_full_with_scores_comments_group_and_prompt(
    api: httpx.Client, browser_client: httpx.Client, marker: str
) -> None:
    name = f"detail-{marker}"
    template_id = publish(api, name, chat("user", "{q}"))["id"]
    group = api.post("/create-group", json={}).json()["id"]
    first = log_request(
        api,
        text="What is 2+2?",
        answer="4",
        tags=[f"route:/{marker}"],
        prompt_name=name,
        prompt_version_number=1,
        parameters={"temperature": 0.2},
        metadata={"run": "r1"},
        input_tokens=7,
        output_tokens=1,
    )
    second = log_request(api)
    for request_id in (first, second):
        api.post("/track-group", json={"request_id": request_id, "group_id": group})
    api.post("/rest/track-score", json={"request_id": first, "score": 77, "name": "helpful"})
    api.post(
        "/rest/track-metadata",
        json={"request_id": first, "metadata": {"feedback_comment:helpful": "spot on"}},
    )
    detail = api.get(f"/api/requests/{first}").json()["request"]
    assert [(t["role"], t["text"], t["side"]) for t in detail["conversation"]] == [
        ("user", "What is 2+2?", "input"),
        ("assistant", "4", "output"),
    ]
    assert detail["scores"][0] | {"updated_at": None} == {
        "name": "helpful",
        "score": 77,
        "comment": "spot on",
        "updated_at": None,
    }
    assert detail["metadata"] == {"run": "r1"}
    assert detail["parameters"] == {"temperature": 0.2}
    assert detail["prompt"] == {"template_id": template_id, "name": name, "version": 1}
    assert [r["id"] for r in detail["group"]] == [second]
    assert (detail["input_tokens"], detail["output_tokens"]) == (7, 1)
    page = browser_client.get(f"/dashboard/requests/{first}").text
    for shown in ("What is 2+2?", "spot on", f"/dashboard/prompts/{template_id}#v1", f"#{second}"):
        assert shown in page
    assert api.get("/api/requests/999999999").status_code == 404
    assert browser_client.get("/dashboard/requests/999999999").status_code == 404


def test_stored_markup_is_escaped_everywhere(
    api: httpx.Client, browser_client: httpx.Client, marker: str
) -> None:
    evil = f'<script>alert("{marker}")</script><img src=x onerror=alert(1)>'
    request_id = log_request(
        api,
        text=evil,
        answer=evil,
        tags=[f"chain:{evil}"],
        metadata={"k": evil},
        error_message=evil,
        status="ERROR",
    )
    for path in (f"/dashboard/requests/{request_id}", "/dashboard/?" + f"chain={evil}"):
        page = browser_client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page
    detail = browser_client.get(f"/dashboard/requests/{request_id}").text
    assert "&lt;script&gt;alert(" in detail


def test_the_list_page_shows_rows_and_links(
    browser_client: httpx.Client, api: httpx.Client, marker: str
) -> None:
    request_id = log_request(api, tags=[f"route:/{marker}"], start=time.time() - 5)
    page = browser_client.get("/dashboard/", params={"route": f"/{marker}"})
    assert page.status_code == 200
    assert f'href="/dashboard/requests/{request_id}"' in page.text
    assert f'href="/api/requests?route=%2F{marker}"' in page.text
