"""The registry prompts a runnable composes, found by walking what it is made of.

Composed runnables are pydantic models or plain objects whose attributes hold their parts
(a sequence's steps, a parallel's branches, a binding's bound, a retry's runnable, a
fallback's list); a `RunnableLambda` names the runnables its function uses in `deps`.
A prompt used only deep inside a function LangChain cannot see into is declared on the
chain instead (`Chain(prompts=...)`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from promptserve.prompts._registry_prompt import RegistryPrompt, StructuredAnswer

__all__ = ["registry_prompts_in"]


def registry_prompts_in(runnable: Runnable[Any, Any]) -> list[RegistryPrompt]:
    """Every RegistryPrompt inside `runnable` (itself included), each once, in found order."""
    found: dict[int, RegistryPrompt] = {}
    seen: set[int] = set()
    stack: list[Any] = [runnable]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, RegistryPrompt):
            found.setdefault(id(node), node)
            continue
        if isinstance(node, StructuredAnswer):
            stack.append(node.prompt)
            continue
        stack.extend(reversed(list(_parts(node))))
    return list(found.values())


def _parts(node: Any) -> Iterable[Any]:
    if isinstance(node, Runnable):
        if isinstance(node, RunnableLambda):
            yield from node.deps
        yield from _children(vars(node).values() if hasattr(node, "__dict__") else ())
    elif isinstance(node, Mapping):
        yield from _children(node.values())
    elif isinstance(node, (list, tuple)):
        yield from _children(node)


def _children(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        if isinstance(value, (Runnable, Mapping, list, tuple)):
            yield value
