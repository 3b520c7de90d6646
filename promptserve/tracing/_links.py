"""Which registry prompt an LLM call was given: set by the caller, read by any tracer.

A `RegistryPrompt` starts its model run with a run id of its own and records the link under
that id for as long as the run lasts; a tracer looks the id up when the run starts. Keyed by
a fresh UUID, the table needs no lock (one dict operation each) and no carrier in the run's
config, so the link reaches every handler: the served tracer, a script's handler, or none.

A call served by an arm of a split label also carries that arm's log tags
(`release:<label>`, `arm:v<n>`) and metadata (`promptserve_release`, `promptserve_arm`),
made once per arm; other calls leave both empty, so they cost nothing more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from promptserve.tracing._types import PromptRef

__all__ = ["PromptCall", "link_of", "linked"]


@dataclass(frozen=True, slots=True)
class PromptCall:
    """One LLM call's registry prompt, with the values its variables took in that call."""

    prompt: PromptRef
    variables: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    # What the log adds for this call beyond the prompt's own tags (a split's arm).
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] | None = None


_CALLS: dict[UUID, PromptCall] = {}


@contextlib.contextmanager
def linked(run_id: UUID, call: PromptCall) -> Iterator[None]:
    """Link the LLM run `run_id` to `call` while the block runs."""
    _CALLS[run_id] = call
    try:
        yield
    finally:
        _CALLS.pop(run_id, None)


def link_of(run_id: UUID) -> PromptCall | None:
    """The registry prompt of the LLM run `run_id`, if one was linked."""
    return _CALLS.get(run_id)
