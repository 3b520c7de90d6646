"""Route-derived PromptLayer tags: every logged LLM call says which route served it.

Format (documented in the README): `route:/example`, `endpoint:invoke`, `chain:example`;
each call adds the tags of the registry prompt it was given (`prompt:example`,
`prompt_version:3`, `prompt_label:prod`; see `promptserve.tracing.prompt_tags`).
"""

from __future__ import annotations

__all__ = ["CHAIN_ENDPOINTS", "STREAM_ENDPOINTS", "route_tags"]

# The LangServe endpoints that run the chain; the rest (schemas, playground) do not.
CHAIN_ENDPOINTS = ("invoke", "batch", "stream", "stream_log", "stream_events")
STREAM_ENDPOINTS = frozenset({"stream", "stream_log", "stream_events"})


def route_tags(*, route: str, endpoint: str, chain: str) -> list[str]:
    """The route's tags of one invocation, in a fixed order."""
    return [f"route:{route}", f"endpoint:{endpoint}", f"chain:{chain}"]
