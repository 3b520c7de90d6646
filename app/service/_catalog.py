"""The catalog: every chain of the `chains` package and every template file with a route.

A module of the package (its name not starting with `_`) declares `CHAIN` or `CHAINS`; a
template file's `serve:` section declares `prompt | model | parser` without any Python.
Two chains on one path, or a module whose chain is not a `Chain`, stop the start-up with
a message that names the module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.runnables import Runnable

from app.publishing.files import ServeSection, load_directory
from promptserve import Chain, RegistryPrompt

__all__ = ["CatalogError", "discover_chains", "template_chain"]


class CatalogError(ValueError):
    """The catalog cannot be served as declared; the message says where and why."""


def discover_chains(package: str = "chains", templates_dir: Path | None = None) -> list[Chain]:
    """The chains of `package`'s modules, then those of `templates_dir`'s files, by path."""
    chains = [*_module_chains(package)]
    if templates_dir is not None and templates_dir.is_dir():
        for _, template in load_directory(templates_dir):
            if template.serve is not None:
                chains.append(template_chain(template.name, template.serve))
    return check_unique(chains)


def check_unique(chains: Iterable[Chain]) -> list[Chain]:
    """`chains`, refused if two share a path or a name."""
    chains = list(chains)
    for attribute in ("path", "name"):
        seen: dict[str, Chain] = {}
        for chain in chains:
            value = getattr(chain, attribute)
            if value in seen:
                raise CatalogError(f"two chains have the {attribute} {value!r}")
            seen[value] = chain
    return chains


def template_chain(prompt_name: str, serve: ServeSection) -> Chain:
    """The YAML-only chain: the template's prompt, its model, a text or JSON parser."""
    prompt = RegistryPrompt(prompt_name, label=serve.label, version=serve.version)
    parser: Runnable[Any, Any] = JsonOutputParser() if serve.output == "json" \
        else StrOutputParser()
    return Chain(serve.path, prompt | parser, name=serve.name or "")


def _module_chains(package: str) -> Iterable[Chain]:
    root = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "templates":
            continue
        module_name = f"{package}.{info.name}"
        module = importlib.import_module(module_name)
        declared: Any = getattr(module, "CHAINS", None)
        if declared is None:
            declared = getattr(module, "CHAIN", None)
            declared = () if declared is None else (declared,)
        if not isinstance(declared, Sequence) or isinstance(declared, str):
            raise CatalogError(f"{module_name}: CHAINS must be a list of Chain")
        for chain in declared:
            if not isinstance(chain, Chain):
                raise CatalogError(f"{module_name}: {chain!r} is not a promptserve Chain")
            yield chain
