"""Registry prompts as LangChain runnables, and the store that keeps their versions current."""

from __future__ import annotations

from promptserve.prompts._arms import (
    MAX_KEY_LENGTH,
    RELEASE_KEY,
    RELEASE_METADATA,
    LiveRelease,
    ServedArm,
    bucket,
)
from promptserve.prompts._find import registry_prompts_in
from promptserve.prompts._registry_prompt import (
    INSTALLED,
    PINS_KEY,
    PromptPins,
    RegistryPrompt,
    StructuredAnswer,
)
from promptserve.prompts._split import Arm, Split, SplitError, declared_split
from promptserve.prompts._split_source import afetch_split
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
    "MAX_KEY_LENGTH",
    "PINS_KEY",
    "RELEASE_KEY",
    "RELEASE_METADATA",
    "Arm",
    "LiveRelease",
    "ModelFactory",
    "ModelOutputError",
    "PromptNotLoadedError",
    "PromptPins",
    "PromptStartupError",
    "PromptStore",
    "PromptVersion",
    "RegistryPrompt",
    "ServedArm",
    "Split",
    "SplitError",
    "StructuredAnswer",
    "TemplateCache",
    "TemplateConversionError",
    "afetch_split",
    "afetch_template",
    "bucket",
    "build_chat_model",
    "build_version",
    "chat_model_arguments",
    "declared_split",
    "fetch_template",
    "input_model",
    "load_prompt",
    "prompt_from_blueprint",
    "prompt_from_template",
    "registry_params",
    "registry_prompts_in",
]
