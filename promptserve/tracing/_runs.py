"""The run tree one tracer sees: run_id → parent/root, dropped as soon as its root ends.

Callbacks may arrive from LangChain's sync path on another thread (an async handler driven
from sync code runs on a throwaway loop), so every mutation holds a plain lock; the critical
sections are a few dict operations.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from langchain_core.messages import BaseMessage

from promptserve.tracing._links import PromptCall

__all__ = ["LLMCall", "RootState", "RunNode", "RunTree", "as_uuid"]

# What RunnableSequence.astream reports as its input before the real input has streamed in.
_STREAM_PLACEHOLDER = {"input": ""}


def as_uuid(run_id: UUID | str) -> UUID:
    """`run_id` as a UUID: LangServe passes the root's run id to LangChain as a string."""
    return run_id if isinstance(run_id, UUID) else UUID(str(run_id))


@dataclass(slots=True)
class LLMCall:
    """What an LLM run's start told us, kept until its end builds the log."""

    kind: Literal["chat", "completion"]
    started: float
    serialized: dict[str, Any]
    invocation_params: dict[str, Any]
    metadata: dict[str, Any]
    name: str | None
    messages: Sequence[BaseMessage] = ()
    prompt: str = ""
    # The registry prompt this call was given (a RegistryPrompt's link), if any.
    link: PromptCall | None = None


@dataclass(slots=True)
class RunNode:
    """One run of the tree."""

    parent_id: UUID | None
    root_id: UUID
    llm: LLMCall | None = None


@dataclass(slots=True)
class RootState:
    """Per-root bookkeeping: its runs, the dict inputs seen in it, and its LLM calls."""

    members: list[UUID] = field(default_factory=list)
    inputs: list[Mapping[str, Any]] = field(default_factory=list)
    llm_calls: int = 0


class RunTree:
    """run_id → node map plus per-root state; a root's whole tree goes when it ends."""

    def __init__(self) -> None:
        self._runs: dict[UUID, RunNode] = {}
        self._roots: dict[UUID, RootState] = {}
        self._order: list[UUID] = []
        self._lock = threading.Lock()

    @property
    def root_ids(self) -> list[UUID]:
        """Every root seen, in start order (kept after the root ends)."""
        with self._lock:
            return list(self._order)

    def __len__(self) -> int:
        return len(self._runs)

    def start(
        self,
        run_id: UUID,
        parent_id: UUID | None,
        *,
        inputs: Any = None,
        llm: LLMCall | None = None,
        root_id: UUID | None = None,
    ) -> RunNode:
        """Record a started run under `root_id` if given; else under its parent's root, and
        a run whose parent we never saw starts a new root."""
        run_id = as_uuid(run_id)
        parent_id = as_uuid(parent_id) if parent_id is not None else None
        with self._lock:
            if root_id is None:
                parent = self._runs.get(parent_id) if parent_id is not None else None
                root_id = parent.root_id if parent is not None else run_id
            root = self._roots.get(root_id)
            if root is None:
                root = self._roots[root_id] = RootState()
                self._order.append(root_id)
            node = RunNode(parent_id=parent_id, root_id=root_id, llm=llm)
            self._runs[run_id] = node
            root.members.append(run_id)
            if isinstance(inputs, Mapping):
                root.inputs.append(inputs)
            if llm is not None:
                root.llm_calls += 1
            return node

    def get(self, run_id: UUID) -> RunNode | None:
        """The node of a run still in progress."""
        run_id = as_uuid(run_id)
        with self._lock:
            return self._runs.get(run_id)

    def finish(self, run_id: UUID) -> tuple[RunNode | None, RootState | None]:
        """Forget a finished run; if it was a root, drop its tree and return its state."""
        run_id = as_uuid(run_id)
        with self._lock:
            node = self._runs.pop(run_id, None)
            if node is None or node.root_id != run_id:
                return node, None
            root = self._roots.pop(run_id, None)
            for member in root.members if root else ():
                self._runs.pop(member, None)
            return node, root

    def input_variables(self, root_id: UUID, names: Sequence[str]) -> dict[str, Any]:
        """Each of `names` from the root's input, else from the first chain input that has it."""
        if not names:
            return {}
        with self._lock:
            root = self._roots.get(root_id)
            candidates = list(root.inputs) if root else []
        # A streamed root first reports a placeholder; try the real inputs before it.
        candidates.sort(key=lambda c: c == _STREAM_PLACEHOLDER)
        found: dict[str, Any] = {}
        for name in names:
            for candidate in candidates:
                if name in candidate:
                    found[name] = candidate[name]
                    break
        return found
