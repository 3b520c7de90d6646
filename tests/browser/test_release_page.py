"""The release page as a person uses it, in headless Chromium: arms, chart, verdict, promote."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BACKEND_KEY, screenshot
from tests.utils.releases import release_path, seed_release

pytestmark = pytest.mark.browser


def test_release_page_shows_arms_chart_verdict_and_promotes(page: Page, service_url: str) -> None:
    name = f"team/slogan-{uuid.uuid4().hex[:6]}"
    headers = {"X-API-KEY": BACKEND_KEY}
    with httpx.Client(base_url=f"{service_url}/promptlayer", headers=headers) as backend:
        seed_release(backend, name)

        path = f"/promptlayer/dashboard/releases/{quote(name, safe='')}/prod"
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/promptlayer/dashboard/login\?next="))
        page.fill("#key", BACKEND_KEY)
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name=name)).to_be_visible()

        arms = page.locator("table.arms")
        expect(arms.locator("thead th.arm-head")).to_have_count(2)
        expect(arms).to_contain_text("v1 control")
        expect(arms).to_contain_text("v2 challenger")
        expect(arms).to_contain_text("85.0")
        chart = page.locator("figure.score-chart svg")
        expect(chart).to_be_visible()
        expect(chart.locator("path.mean")).to_have_count(2)
        verdict = page.locator("section.verdict[data-version='2']")
        expect(verdict).to_contain_text("better")
        expect(verdict).to_contain_text("Better: v2 scores higher than v1")
        screenshot(page, "release-page")

        page.click("button.promote[data-version='2']")
        expect(page).to_have_url(re.compile(re.escape(path) + "$"))
        expect(page.locator("p.not-split")).to_contain_text("points at v2")
        expect(page.locator("table.history tbody tr").first).to_contain_text("promoted")
        screenshot(page, "release-promoted")

        state = backend.get(release_path(name, "prod")).json()
        assert state["split"] is None and state["version"] == 2
        assert state["history"][0]["by"].startswith("dashboard (…")
