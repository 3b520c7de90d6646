"""Readiness probes: can this process reach the registry and the model server right now?"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx
import openai

__all__ = ["Probe", "model_probe", "registry_probe", "run_probes"]

Probe = Callable[[], Awaitable[bool]]

_TIMEOUT = 2.0


def registry_probe(*, base_url: str, api_key: str) -> Probe:
    """True when the registry lists templates for our key (one small page)."""

    async def probe() -> bool:
        # A fresh connection each time: probes are rare, and a stale pool must not hide
        # that the registry went away.
        async with httpx.AsyncClient() as http:
            response = await http.get(
                f"{base_url}/prompt-templates",
                params={"page": 1, "per_page": 1},
                headers={"X-API-KEY": api_key},
                timeout=_TIMEOUT,
            )
        return response.status_code == 200

    return probe


def model_probe(
    http: openai.DefaultAsyncHttpxClient, *, base_url: str | None, api_key: str
) -> Probe:
    """True when the model server lists its models (the openai client knows the default URL)."""
    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, http_client=http, max_retries=0, timeout=_TIMEOUT
    )

    async def probe() -> bool:
        await client.models.list()
        return True

    return probe


async def run_probes(probes: dict[str, Probe]) -> dict[str, bool]:
    """Every probe at once; an error or a timeout counts as not ready."""

    async def one(probe: Probe) -> bool:
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(probe(), _TIMEOUT + 0.5)
        return False

    results = await asyncio.gather(*(one(p) for p in probes.values()))
    return dict(zip(probes, results, strict=True))
