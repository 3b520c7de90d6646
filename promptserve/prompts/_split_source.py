"""Reading a label's split from the embedded backend (`GET /rest/releases/{t}/{l}`).

Only the store's start-up and background refresh call it, never a request. The route is an
extension of the embedded backend: a 404 (no such label, or a hosted PromptLayer that lacks
the route), 405 or 501 means the label is not split. Any other failure raises, and the
store keeps serving what it had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from promptserve.prompts._split import Split

if TYPE_CHECKING:
    from promptlayer import AsyncPromptLayer

    from promptserve.prompts._registry_prompt import RegistryPrompt

__all__ = ["NO_ROUTE", "afetch_split", "releases_url"]

NO_ROUTE = frozenset({404, 405, 501})
"""Answers meaning: no split here (the label is plain, or the backend has no such route)."""


def releases_url(base_url: str, template: str, label: str) -> str:
    """The split's address under the backend root `base_url`."""
    return (f"{base_url.rstrip('/')}/rest/releases/"
            f"{quote(template, safe='')}/{quote(label, safe='')}")


async def afetch_split(
    client: AsyncPromptLayer, prompt: RegistryPrompt, *, timeout: float = 10.0
) -> Split | None:
    """The split of `prompt`'s label on `client`'s backend, or None if it is not split."""
    if prompt.label is None:
        return None
    url = releases_url(client.base_url, prompt.prompt_name, prompt.label)
    async with httpx.AsyncClient(timeout=timeout) as http:
        response = await http.get(url, headers={"X-API-KEY": client.api_key})
    if response.status_code in NO_ROUTE:
        return None
    response.raise_for_status()
    data = response.json()
    split = data.get("split") if isinstance(data, dict) else None
    if split is None:
        return None
    return Split.from_json(split, template=prompt.prompt_name, label=prompt.label)
