"""The `promptserve release` command's HTTP client for the embedded backend's releases API.

The command never reads the database: it talks to a running backend over HTTP, with the
backend's key in `X-API-KEY` like every other client, and says it is the command line
(`X-PromptServe-Client: cli`) so the history names it. Every failure becomes one
`ReleaseApiError` whose message says what went wrong and what to do about it, since the
command prints it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["CLIENT_HEADER", "ReleaseApiError", "ReleaseClient", "release_path"]

CLIENT_HEADER = "X-PromptServe-Client"
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ReleaseApiError(Exception):
    """A refused or failed call: `message` is meant for a person, `status` is the HTTP one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def release_path(template: str, label: str, *rest: str) -> str:
    """`/rest/releases/<template>/<label>[/...]`, each part percent-encoded (names hold '/')."""
    parts = [quote(template, safe=""), quote(label, safe=""), *rest]
    return "/rest/releases/" + "/".join(parts)


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for field in ("message", "detail"):
            if isinstance(body.get(field), str):
                message: str = body[field]
                return message
    text = response.text.strip()
    return text[:500] if text else response.reason_phrase


def _no_such_route(response: httpx.Response) -> bool:
    """A 404 of the route itself (a hosted or older backend), not of a template or label."""
    try:
        body = response.json()
    except ValueError:
        return True
    message = body.get("message") if isinstance(body, dict) else None
    return not isinstance(message, str) or message == "Not Found"


def _advice(response: httpx.Response, base_url: str) -> str:
    """What the person can do about a refusal, by its status."""
    status = response.status_code
    if status in (401, 403):
        return (
            f"The backend at {base_url} refused the API key. Pass the backend's key with "
            "--api-key or PROMPTLAYER_API_KEY (the embedded backend prints it at first start "
            "and keeps it in <data dir>/backend_api_key)."
        )
    if status == 404 and _no_such_route(response):
        return (
            f"{base_url} has no releases API. Only promptserve's embedded backend has one "
            "(the hosted PromptLayer does not); point --url or PROMPTLAYER_BASE_URL at it."
        )
    if status == 409:
        return "Nothing was changed. Check the release with `promptserve release show`."
    if status >= 500:
        return "The backend failed; its log says why."
    return ""


@dataclass
class ReleaseClient:
    """Calls of the releases API at `base_url` with `api_key`; use as a context manager."""

    base_url: str
    api_key: str
    transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"X-API-KEY": self.api_key, CLIENT_HEADER: "cli"},
            timeout=_TIMEOUT,
            transport=self.transport,
        )

    def __enter__(self) -> ReleaseClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as error:
            raise ReleaseApiError(
                f"Cannot reach the backend at {self.base_url} ({error.__class__.__name__}: "
                f"{error}). Is `promptserve serve` or `promptserve backend` running there? "
                "Pass its address with --url or PROMPTLAYER_BASE_URL."
            ) from None
        if response.is_success:
            return response.json() if response.content else {}
        message = f"{_server_message(response)} (HTTP {response.status_code})"
        advice = _advice(response, self.base_url)
        raise ReleaseApiError(
            f"{message}. {advice}" if advice else message, status=response.status_code
        )

    def list(self) -> dict[str, Any]:
        """`{"releases": [split, ...]}`: the splits in force."""
        answer: dict[str, Any] = self._call("GET", "/rest/releases")
        return answer

    def get(self, template: str, label: str) -> dict[str, Any]:
        """`{"split", "version", "history"}` of one label."""
        answer: dict[str, Any] = self._call("GET", release_path(template, label))
        return answer

    def judgement(self, template: str, label: str) -> dict[str, Any]:
        """`{"split", "arms", "comparisons", "series"}` of a split label."""
        answer: dict[str, Any] = self._call("GET", release_path(template, label, "judgement"))
        return answer

    def split(self, template: str, label: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start or change the split; the split."""
        answer: dict[str, Any] = self._call("PUT", release_path(template, label), body)
        return answer

    def promote(self, template: str, label: str, version: int | None) -> dict[str, Any]:
        """Move the label to `version` (default: the best challenger) and end the split."""
        body = {} if version is None else {"version": version}
        answer: dict[str, Any] = self._call("POST", release_path(template, label, "promote"), body)
        return answer

    def rollback(self, template: str, label: str) -> dict[str, Any]:
        """Move the label back to the control and end the split."""
        answer: dict[str, Any] = self._call("POST", release_path(template, label, "rollback"))
        return answer

    def end(self, template: str, label: str) -> dict[str, Any]:
        """End the split; the label stays on the control."""
        answer: dict[str, Any] = self._call("DELETE", release_path(template, label))
        return answer
