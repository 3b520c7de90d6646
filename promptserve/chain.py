"""`Chain`: one route of the catalog, as a module in `chains/` declares it.

    CHAIN = Chain("/critique", slogan_then_critique, output_type=Critique)

The service imports every module of the `chains` package and serves each `CHAIN` (or each of
`CHAINS`) with `promptserve.server.add_routes`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable

from promptserve.prompts import RegistryPrompt, registry_prompts_in

__all__ = ["Chain"]

_PATH = re.compile(r"^(/[A-Za-z0-9_-]+)+$")


@dataclass(frozen=True)
class Chain:
    """A runnable served at `path` (`/name`, letters, digits, `_` and `-`).

    `input_type` / `output_type` declare what LangServe publishes and validates ("auto":
    derived, the input from the first registry prompt's variables; an object output is
    then served whole). `prompts` names registry prompts the runnable uses inside a plain
    function, where they cannot be found by walking it.
    """

    path: str
    runnable: Runnable[Any, Any]
    name: str = ""
    input_type: Any = "auto"
    output_type: Any = "auto"
    prompts: Sequence[RegistryPrompt] = field(default=(), hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not _PATH.match(self.path):
            raise ValueError(f"chain path {self.path!r} must look like '/name'")
        if not isinstance(self.runnable, Runnable):
            raise TypeError(f"chain {self.path}: runnable must be a LangChain Runnable")
        # Frozen dataclass: a default derived from another field is set through object.
        if not self.name:
            object.__setattr__(self, "name", self.path.strip("/").replace("/", "_"))

    @property
    def registry_prompts(self) -> list[RegistryPrompt]:
        """Every registry prompt the chain uses: those found in it, then those declared."""
        found = registry_prompts_in(self.runnable)
        return [*found, *(p for p in self.prompts if all(p is not f for f in found))]
