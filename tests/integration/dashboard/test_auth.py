"""Dashboard sign-in: cookie session, CSRF on forms, the JSON API's two ways in."""

from __future__ import annotations

import re

import httpx

from tests.integration.backend.conftest import API_KEY, Backend
from tests.utils.dashboard import sign_in


def test_pages_redirect_to_sign_in_and_the_api_answers_401(backend: Backend) -> None:
    with httpx.Client(base_url=backend.url) as client:
        page = client.get("/dashboard/prompts")
        assert page.status_code == 303
        assert page.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fprompts"
        api = client.get("/api/requests")
        assert api.status_code == 401
        assert "message" in api.json()


def test_root_and_bare_path_lead_to_the_dashboard(backend: Backend) -> None:
    with httpx.Client(base_url=backend.url) as client:
        assert client.get("/").headers["location"] == "/dashboard/"
        assert client.get("/dashboard").headers["location"] == "/dashboard/"


def test_sign_in_sets_a_strict_httponly_cookie_that_is_not_the_key(backend: Backend) -> None:
    with httpx.Client(base_url=backend.url) as client:
        answer = sign_in(client, API_KEY)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/"
        cookie = next(
            c
            for c in answer.headers.get_list("set-cookie")
            if c.startswith("promptserve_dashboard=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert API_KEY not in cookie
        assert client.get("/dashboard/prompts").status_code == 200
        assert client.get("/api/prompts").status_code == 200


def test_wrong_key_and_missing_csrf_are_refused(backend: Backend) -> None:
    with httpx.Client(base_url=backend.url) as client:
        assert sign_in(client, "wrong").status_code == 401
        client.cookies.clear()
        # No form token (a cross-site post): refused even with the right key.
        refused = client.post("/dashboard/login", data={"key": API_KEY})
        assert refused.status_code == 403
        assert "promptserve_dashboard" not in client.cookies


def test_next_never_leaves_the_dashboard(backend: Backend) -> None:
    with httpx.Client(base_url=backend.url) as client:
        form = client.get("/dashboard/login", params={"next": "//evil.example/x"}).text
        assert 'name="next" value="/dashboard/"' in form
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        assert token
        data = {"key": API_KEY, "csrf": token.group(1), "next": "https://evil.example/"}
        answer = client.post("/dashboard/login", data=data)
        assert answer.headers["location"] == "/dashboard/"


def test_logout_needs_the_session_csrf_token(browser_client: httpx.Client) -> None:
    assert browser_client.post("/dashboard/logout", data={"csrf": "forged"}).status_code == 403
    page = browser_client.get("/dashboard/prompts").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    answer = browser_client.post("/dashboard/logout", data={"csrf": token.group(1)})
    assert answer.status_code == 303
    assert browser_client.get("/dashboard/prompts").status_code == 303
    assert browser_client.get("/api/prompts").status_code == 401


def test_api_accepts_the_key_header(api: httpx.Client) -> None:
    assert api.get("/api/requests", params={"limit": 1}).status_code == 200
    assert api.get("/api/requests", headers={"X-API-KEY": "nope"}).status_code == 401


def test_pages_send_a_strict_content_security_policy(browser_client: httpx.Client) -> None:
    page = browser_client.get("/dashboard/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
