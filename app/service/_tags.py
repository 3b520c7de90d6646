"""Route-derived PromptLayer tags: every logged LLM call says which route served it.

Format (documented in the README): `route:/example`, `endpoint:invoke`, `chain:example`,
`prompt:example`, `prompt_version:3`, and `prompt_label:prod` when the chain follows a
release label.
"""

from __future__ import annotations

__all__ = ["CHAIN_ENDPOINTS", "endpoint_of", "route_tags"]

# The LangServe endpoints that run the chain; the rest (schemas, playground) do not.
CHAIN_ENDPOINTS = frozenset({"invoke", "batch", "stream", "stream_log", "stream_events"})


def endpoint_of(path: str) -> str:
    """The LangServe endpoint named by a request path (`/example/stream_log` → `stream_log`)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def route_tags(
    *,
    route: str,
    endpoint: str,
    chain: str,
    prompt_name: str,
    prompt_version: int,
    prompt_label: str | None,
) -> list[str]:
    """The tags of one invocation, in a fixed order."""
    tags = [
        f"route:{route}",
        f"endpoint:{endpoint}",
        f"chain:{chain}",
        f"prompt:{prompt_name}",
        f"prompt_version:{prompt_version}",
    ]
    if prompt_label:
        tags.append(f"prompt_label:{prompt_label}")
    return tags
