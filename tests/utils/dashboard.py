"""Helpers for dashboard tests: sign in like a browser, log requests with known fields."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx


def sign_in(client: httpx.Client, key: str, *, prefix: str = "") -> httpx.Response:
    """Fetch the sign-in form, post the key with its CSRF token; the client keeps the cookie."""
    form = client.get(f"{prefix}/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    return client.post(f"{prefix}/dashboard/login", data={"key": key, "csrf": token.group(1)})


def chat(role: str, text: str) -> dict[str, Any]:
    """A one-message chat blueprint."""
    return {
        "type": "chat",
        "messages": [{"role": role, "content": [{"type": "text", "text": text}]}],
    }


def log_request(
    client: httpx.Client,
    *,
    text: str = "hello",
    answer: str = "hi",
    tags: list[str] | None = None,
    status: str = "SUCCESS",
    latency: float = 0.5,
    start: float | None = None,
    **extra: Any,
) -> int:
    """Log one request through /log-request; its id."""
    begin = start if start is not None else time.time() - latency
    body = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": chat("user", text),
        "output": chat("assistant", answer),
        "request_start_time": begin,
        "request_end_time": begin + latency,
        "tags": tags or [],
        "status": status,
        **extra,
    }
    response = client.post("/log-request", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def publish(
    client: httpx.Client,
    name: str,
    blueprint: dict[str, Any],
    *,
    commit_message: str | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Publish a version through /rest/prompt-templates; the answer."""
    body = {
        "prompt_template": {"prompt_name": name},
        "prompt_version": {
            "prompt_template": blueprint,
            "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
            "commit_message": commit_message,
        },
        "release_labels": labels or [],
    }
    response = client.post("/rest/prompt-templates", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer
