"""Small value types shared by the tracing modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["Blueprint", "LogBody", "PromptRef"]

# A PromptLayer prompt blueprint and a /log-request body (docs/PROMPTLAYER_API.md §4, §2.1).
Blueprint: TypeAlias = dict[str, Any]
LogBody: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PromptRef:
    """The registry prompt a chain was built from, attached to every log of its runs."""

    name: str
    version: int | None = None
    template_id: int | None = None
    input_variable_names: tuple[str, ...] = ()
