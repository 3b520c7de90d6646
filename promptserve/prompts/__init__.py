"""Registry prompts as LangChain runnables, and the store that keeps their versions current."""

from __future__ import annotations

from promptserve.prompts._find import registry_prompts_in
from promptserve.prompts._registry_prompt import (
    INSTALLED,
    PINS_KEY,
    PromptPins,
    RegistryPrompt,
    StructuredAnswer,
)
from promptserve.prompts._store import (
    PromptStartupError,
    PromptStore,
    TemplateCache,
    afetch_template,
    fetch_template,
    load_prompt,
    registry_params,
)
from promptserve.prompts._version import ModelFactory, PromptVersion, build_version
from promptserve.prompts.convert import prompt_from_blueprint, prompt_from_template
from promptserve.prompts.errors import (
    ModelOutputError,
    PromptNotLoadedError,
    TemplateConversionError,
)
from promptserve.prompts.inputs import input_model
from promptserve.prompts.model import build_chat_model, chat_model_arguments

__all__ = [
    "INSTALLED",
    "PINS_KEY",
    "ModelFactory",
    "ModelOutputError",
    "PromptNotLoadedError",
    "PromptPins",
    "PromptStartupError",
    "PromptStore",
    "PromptVersion",
    "RegistryPrompt",
    "StructuredAnswer",
    "TemplateCache",
    "TemplateConversionError",
    "afetch_template",
    "build_chat_model",
    "build_version",
    "chat_model_arguments",
    "fetch_template",
    "input_model",
    "load_prompt",
    "prompt_from_blueprint",
    "prompt_from_template",
    "registry_params",
    "registry_prompts_in",
]
