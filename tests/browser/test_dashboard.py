"""The dashboard as a person uses it, in headless Chromium, against a running promptserve."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BACKEND_KEY, screenshot
from tests.utils.dashboard import chat, log_request, publish

pytestmark = pytest.mark.browser


def sign_in(page: Page) -> None:
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/promptlayer/dashboard/login\?next="))
    page.fill("#key", BACKEND_KEY)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Requests")).to_be_visible()


def invoke(service_url: str, product: str) -> dict[str, Any]:
    answer = httpx.post(f"{service_url}/example/invoke", json={"input": {"product": product}})
    assert answer.status_code == 200, answer.text
    metadata: dict[str, Any] = answer.json()["metadata"]
    return metadata


def test_list_filter_open_a_request_and_see_its_feedback(page: Page, service_url: str) -> None:
    scored = invoke(service_url, "toasters")
    invoke(service_url, "kettles")
    request_id = scored["promptlayer_request_id"]
    feedback = {
        "request_id": request_id,
        "score": 87,
        "name": "helpfulness",
        "comment": "Short and to the point",
        "feedback_token": scored["feedback_token"],
    }
    assert httpx.post(f"{service_url}/feedback", json=feedback).status_code == 200

    sign_in(page)
    rows = page.locator("table.requests tbody tr")
    expect(rows.first).to_contain_text("/example")
    # The list says which endpoint, and what was asked and answered.
    expect(rows.first).to_contain_text("invoke")
    expect(rows.first.locator("td.excerpt")).to_contain_text("kettles")
    screenshot(page, "requests-list")

    page.fill("input[name=route]", "/example")
    page.fill("input[name=endpoint]", "invoke")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"route=%2Fexample"))
    assert rows.count() >= 2
    for text in rows.all_inner_texts():
        assert "/example" in text
    screenshot(page, "requests-filtered")

    page.click(f"a[href$='/requests/{request_id}']")
    expect(page.get_by_role("heading", name=f"Request #{request_id}")).to_be_visible()
    expect(page.locator("ol.conversation")).to_contain_text("toasters")
    scores = page.locator("table.scores")
    expect(scores).to_contain_text("helpfulness")
    expect(scores).to_contain_text("87")
    expect(scores).to_contain_text("Short and to the point")
    expect(page.locator(".tags")).to_contain_text("route:/example")
    tags = page.locator(".tags a.tag").all_inner_texts()
    assert tags[:3] == ["route:/example", "endpoint:invoke", "chain:example"], tags
    screenshot(page, "request-detail")

    page.click(".facts a")  # the prompt@version link
    expect(page.get_by_role("heading", name="example")).to_be_visible()
    expect(page.locator("p.served-by")).to_contain_text("/example (v1")
    table = page.locator("table.versions")
    expect(table).to_contain_text("avg helpfulness")
    expect(table).to_contain_text("87.0")
    expect(page.locator("figure.chart svg").first).to_be_visible()
    screenshot(page, "prompt-versions")


def test_stored_script_shows_as_text_and_runs_nothing(page: Page, service_url: str) -> None:
    evil = '<script>window.__pwned = 1; alert("xss")</script><img src=x onerror="window.__pwned=2">'
    headers = {"X-API-KEY": BACKEND_KEY}
    with httpx.Client(base_url=f"{service_url}/promptlayer", headers=headers) as backend:
        first = publish(backend, "evil-prompt", chat("user", evil), commit_message="<b>bold?</b>")
        publish(backend, "evil-prompt", chat("user", evil + " v2"))
        request_id = log_request(backend, text=evil, answer=evil, tags=[f"chain:{evil}"])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page)
    pages = {
        "escaped-prompt": f"/promptlayer/dashboard/prompts/{first['id']}",
        "escaped-request": f"/promptlayer/dashboard/requests/{request_id}",
        "escaped-diff": f"/promptlayer/dashboard/prompts/{first['id']}/diff",
    }
    for name, path in pages.items():
        page.goto(path)
        expect(page.locator("main")).to_contain_text("<script>window.__pwned = 1;")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main script, main img").count() == 0
        screenshot(page, name)
    page.goto(pages["escaped-prompt"])
    expect(page.locator("table.versions")).to_contain_text("<b>bold?</b>")
    page.goto("/promptlayer/dashboard/?" + urlencode({"chain": evil}))
    expect(page.locator("table.requests tbody tr")).to_have_count(1)
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []


def test_sign_out(page: Page) -> None:
    sign_in(page)
    page.click("text=Sign out")
    expect(page.locator("#key")).to_be_visible()
    page.goto("/promptlayer/dashboard/prompts")
    expect(page.locator("#key")).to_be_visible()
