"""The chains bare LangServe serves: promptserve's, rebuilt from the same registry templates.

Each is composed as the catalog composes it (chains/templates/example.yaml's `serve:`
section, chains/critique.py), but from plain LangChain prompts and the fake model, without
registry prompts, pins or tracing: what stock LangServe would serve for the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnablePassthrough
from promptlayer import PromptLayer

from bench.fake_model import fake_chat_model
from chains import critique as critique_module
from promptserve.prompts import PromptVersion, RegistryPrompt, build_version, fetch_template

__all__ = ["BARE_CHAINS", "EXAMPLE", "BareChain", "example_chain", "critique_chain"]

EXAMPLE = RegistryPrompt("example", label="prod")
"""/example's prompt, as the `serve:` section of chains/templates/example.yaml selects it."""


@dataclass(frozen=True)
class BareChain:
    """A runnable for `langserve.add_routes` and the types it is served with."""

    path: str
    runnable: Runnable[Any, Any]
    input_type: Any
    output_type: Any = "auto"


def _version(client: PromptLayer, prompt: RegistryPrompt) -> PromptVersion:
    return build_version(fetch_template(client, prompt), fake_chat_model)


def _call(version: PromptVersion) -> Runnable[Any, str]:
    """One model call: the template's prompt, the fake, the text of its answer."""
    return version.prompt | version.model | StrOutputParser()


def example_chain(client: PromptLayer) -> BareChain:
    """/example: `prompt | model | StrOutputParser`."""
    version = _version(client, EXAMPLE)
    return BareChain("/example", _call(version), version.input_type)


def critique_chain(client: PromptLayer) -> BareChain:
    """/critique: the slogan, then its critique (two calls), typed as chains/critique.py
    declares it (`Product` in, `Critique` out)."""
    slogan = _version(client, critique_module.slogan)
    critique = _version(client, critique_module.critique)
    runnable = RunnablePassthrough.assign(slogan=_call(slogan)) | {
        "slogan": itemgetter("slogan"), "critique": _call(critique)}
    return BareChain("/critique", runnable, critique_module.Product, critique_module.Critique)


BARE_CHAINS = {"example": example_chain, "critique": critique_chain}
