"""Headless Chromium (Debian's package, driven by Playwright; nothing downloaded) against a
real promptserve with its embedded backend and a fake OpenAI server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.service import create_app
from tests.integration.service.conftest import BACKEND_KEY, fake_llm, service_settings  # noqa: F401
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
# No network at run time: no updater, no sync, no background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def service_url(
    tmp_path_factory: pytest.TempPathFactory,
    fake_llm: tuple[FakeOpenAI, str],  # noqa: F811
) -> Iterator[str]:
    """A running promptserve (embedded backend, SQLite) answering through the fake model."""
    _, llm_url = fake_llm
    settings = service_settings(tmp_path_factory.mktemp("browser"), llm_url)
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium for the module."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium package is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, service_url: str) -> Iterator[object]:
    """A fresh browser context (no cookies) with one page."""
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=service_url, viewport={"width": 1360, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def screenshot(page: object, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


__all__ = ["BACKEND_KEY", "screenshot"]
