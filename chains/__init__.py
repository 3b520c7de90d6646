"""Chains: the catalog of routes, and registry templates turned into LangChain runnables."""

from __future__ import annotations

from chains.catalog import (
    CATALOG,
    TEMPLATES_DIR,
    ChainSpec,
    afetch_template,
    build_chain,
    fetch_template,
    registry_params,
)
from chains.convert import prompt_from_blueprint, prompt_from_template
from chains.errors import TemplateConversionError
from chains.inputs import input_model
from chains.model import build_chat_model, chat_model_arguments

__all__ = [
    "CATALOG",
    "TEMPLATES_DIR",
    "ChainSpec",
    "TemplateConversionError",
    "afetch_template",
    "build_chain",
    "build_chat_model",
    "chat_model_arguments",
    "fetch_template",
    "input_model",
    "prompt_from_blueprint",
    "prompt_from_template",
    "registry_params",
]
