"""Registry templates for unit tests: the bundled template files, as the registry returns them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from app.backend.rendering import complete_input_variables
from chains import TEMPLATES_DIR
from promptserve.prompts import ModelFactory, PromptVersion, RegistryPrompt, build_version

__all__ = ["fake_models", "installed", "raw_template"]


def raw_template(file: str, *, version: int = 1, template_id: int = 1) -> dict[str, Any]:
    """`chains/templates/<file>.yaml` as a registry GET with skip_input_variable_rendering
    answers it: unrendered, `input_variables` computed as the backend computes them."""
    data = yaml.safe_load((TEMPLATES_DIR / f"{file}.yaml").read_text())
    return {
        "id": template_id,
        "version": version,
        "prompt_name": data["name"],
        "prompt_template": complete_input_variables(data["blueprint"]),
        "metadata": data["metadata"],
    }


def fake_models(answers: Mapping[str, Iterable[str]]) -> ModelFactory:
    """A model factory: each template's calls answer `answers[template name]` in turn."""

    def build(name: str, metadata: Mapping[str, Any]) -> BaseChatModel:
        return FakeListChatModel(responses=list(answers[name]))

    return build


def installed(prompt: RegistryPrompt, template: Mapping[str, Any],
              *answers: str) -> PromptVersion:
    """Build `template` with a fake model answering `answers` and install it on `prompt`."""
    version = build_version(template, fake_models({template["prompt_name"]: answers}))
    prompt.install(version)
    return version
