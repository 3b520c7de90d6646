"""One registry template version, built: its LangChain prompt, its model, its input type."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable
from pydantic import BaseModel

from promptserve.prompts.convert import prompt_from_template
from promptserve.prompts.errors import TemplateConversionError
from promptserve.prompts.inputs import input_model
from promptserve.prompts.model import chat_model_arguments
from promptserve.tracing import PromptRef

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["ModelFactory", "PromptVersion", "build_version"]

ModelFactory = Callable[[str, Mapping[str, Any]], "BaseChatModel"]
"""(template name, its `metadata.model`) → the chat model that template's calls go to."""


@dataclass(frozen=True)
class PromptVersion:
    """A registry template version ready to run: format with `prompt`, call `model`."""

    template: Mapping[str, Any]
    prompt: BasePromptTemplate[Any]
    model: Runnable[Any, Any]
    input_type: type[BaseModel]

    @property
    def name(self) -> str:
        """The template's name in the registry."""
        return str(self.template["prompt_name"])

    @property
    def number(self) -> int:
        """The template's version number."""
        return int(self.template["version"])

    @property
    def key(self) -> tuple[Any, Any]:
        """What tells two fetched versions apart: the template id and version number."""
        return self.template.get("id"), self.template.get("version")

    @functools.cached_property  # read by every call's prompt link
    def ref(self) -> PromptRef:
        """What a log links this version as."""
        blueprint = self.template.get("prompt_template") or {}
        return PromptRef(
            name=self.name,
            version=self.number,
            template_id=self.template.get("id"),
            # The registry lists them; a template without the list has them in its prompt.
            input_variable_names=tuple(blueprint.get("input_variables")
                                       or self.prompt.input_variables),
        )

    @property
    def response_format(self) -> Any:
        """The structured-output request the template carries (`parameters.response_format`)."""
        model = (self.template.get("metadata") or {}).get("model") or {}
        return (model.get("parameters") or {}).get("response_format")


def build_version(template: Mapping[str, Any], build_model: ModelFactory) -> PromptVersion:
    """Build a raw registry template (unrendered) with the model `build_model` gives it.

    The template's `metadata.model` is checked here whatever `build_model` returns, so a
    template that serves against a test model also serves live. Tools of the blueprint are
    bound to the model in OpenAI's shape, with its `tool_choice`.
    """
    name = str(template.get("prompt_name") or "<unnamed>")
    prompt = prompt_from_template(template)
    metadata = template.get("metadata") or {}
    model_metadata = metadata.get("model") if isinstance(metadata, Mapping) else None
    if not isinstance(model_metadata, Mapping):
        raise TemplateConversionError(name, "metadata.model is required", path="metadata.model")
    chat_model_arguments(model_metadata, template_name=name)
    chat_model = build_model(name, model_metadata)
    model: Runnable[Any, Any] = chat_model
    blueprint = template.get("prompt_template") or {}
    tools = blueprint.get("tools") if isinstance(blueprint, Mapping) else None
    if tools:
        model = chat_model.bind_tools(tools, tool_choice=blueprint.get("tool_choice"))
    return PromptVersion(
        template=template,
        prompt=prompt,
        model=model,
        input_type=input_model(prompt, template_name=name, model_name=f"{name}_input"),
    )
