"""The chain catalog: which routes exist, which registry prompt each uses, and how to build it.

A chain is `prompt | ChatOpenAI | output parser`, typed with a pydantic input model so that
LangServe publishes `{"product": str}` and rejects a missing variable with a 422. Fetching
and refreshing templates is the server's job; `fetch_template` / `afetch_template` are the
one way to ask the registry for a raw (unrendered) template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.runnables import Runnable

from chains.convert import prompt_from_template
from chains.errors import TemplateConversionError
from chains.inputs import input_model
from chains.model import build_chat_model, chat_model_arguments

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from promptlayer import AsyncPromptLayer, PromptLayer
    from promptlayer.types.prompt_template import GetPromptTemplate

__all__ = [
    "CATALOG",
    "TEMPLATES_DIR",
    "ChainSpec",
    "afetch_template",
    "build_chain",
    "fetch_template",
    "registry_params",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
"""The template files that seed an empty registry (`promptserve publish chains/templates`)."""

DEFAULT_LABEL = "prod"


@dataclass(frozen=True)
class ChainSpec:
    """One route: its path, its registry prompt (a label or a version) and its model settings."""

    path: str
    prompt_name: str
    name: str = ""
    label: str | None = None
    version: int | None = None
    model_name: str | None = None
    # Not hashed (a dict); specs stay usable as dict keys.
    model_parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    output: Literal["str", "json"] = "str"

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path.endswith("/") or len(self.path) < 2:
            raise ValueError(f"chain path {self.path!r} must look like '/name'")
        if self.label is not None and self.version is not None:
            raise ValueError(f"chain {self.path}: give a release label or a version, not both")
        if self.version is not None and self.version < 1:
            raise ValueError(f"chain {self.path}: version must be 1 or more")
        if self.output not in ("str", "json"):
            raise ValueError(f"chain {self.path}: output must be 'str' or 'json'")
        # Frozen dataclass: defaults derived from other fields are set through object.
        if not self.name:
            object.__setattr__(self, "name", self.path.strip("/").replace("/", "_"))
        if self.label is None and self.version is None:
            object.__setattr__(self, "label", DEFAULT_LABEL)


CATALOG: tuple[ChainSpec, ...] = (
    ChainSpec(path="/example", name="example", prompt_name="example", label="prod", output="str"),
)
"""Every chain promptserve serves."""


def registry_params(spec: ChainSpec) -> GetPromptTemplate:
    """The GET parameters for a spec's raw template: its label or version, unrendered."""
    params: GetPromptTemplate = {"skip_input_variable_rendering": True}
    if spec.version is not None:
        params["version"] = spec.version
    elif spec.label is not None:
        params["label"] = spec.label
    return params


def fetch_template(client: PromptLayer, spec: ChainSpec) -> dict[str, Any]:
    """The registry's raw template for `spec`, through the sync SDK client (cache must be off)."""
    _refuse_cache(client)
    return dict(client.templates.get(spec.prompt_name, registry_params(spec)))


async def afetch_template(client: AsyncPromptLayer, spec: ChainSpec) -> dict[str, Any]:
    """The registry's raw template for `spec`, through the async SDK client (cache must be off)."""
    _refuse_cache(client)
    return dict(await client.templates.get(spec.prompt_name, registry_params(spec)))


def _refuse_cache(client: PromptLayer | AsyncPromptLayer) -> None:
    # With cache_ttl_seconds the SDK renders cached templates itself and can blank every
    # variable (contract §1.1 "Trap"): such a template would build a wrong chain silently.
    if getattr(client.templates, "_cache", None) is not None:
        raise ValueError("fetch templates with a PromptLayer client without cache_ttl_seconds")


def build_chain(
    spec: ChainSpec,
    template: Mapping[str, Any],
    *,
    api_key: str | None,
    base_url: str | None,
    model_name_override: str | None = None,
    http_async_client: Any | None = None,
    model: BaseChatModel | None = None,
) -> Runnable[Any, Any]:
    """`prompt | ChatOpenAI | parser` for a registry template, typed with its input variables.

    `model` replaces the template's ChatOpenAI (benchmarks serve an in-process fake); the
    template's `metadata.model` is still checked, so a chain that serves here serves live.
    """
    name = str(template.get("prompt_name") or spec.prompt_name)
    prompt = prompt_from_template(template)
    metadata = template.get("metadata") or {}
    model_metadata = metadata.get("model") if isinstance(metadata, Mapping) else None
    if not isinstance(model_metadata, Mapping):
        raise TemplateConversionError(name, "metadata.model is required", path="metadata.model")
    chat_model: BaseChatModel
    if model is None:
        chat_model = build_chat_model(
            model_metadata,
            api_key=api_key,
            base_url=base_url,
            model_name_override=model_name_override or spec.model_name,
            parameter_overrides=spec.model_parameters,
            template_name=name,
            http_async_client=http_async_client,
        )
    else:
        chat_model_arguments(model_metadata, template_name=name)  # same checks as live
        chat_model = model
    llm: Runnable[Any, Any] = chat_model
    blueprint = template.get("prompt_template") or {}
    tools = blueprint.get("tools") if isinstance(blueprint, Mapping) else None
    if tools:
        # OpenAI-shaped tool definitions pass through as they are.
        llm = chat_model.bind_tools(tools, tool_choice=blueprint.get("tool_choice"))
    parser: Runnable[Any, Any] = JsonOutputParser() if spec.output == "json" else StrOutputParser()
    input_type = input_model(prompt, template_name=name, model_name=f"{spec.name}_input")
    sequence: Runnable[Any, Any] = prompt | llm | parser
    chain = sequence.with_types(input_type=input_type)
    return chain.with_config(
        run_name=spec.name,
        # Seen by callbacks of every run inside the chain (tracing links calls to the prompt).
        metadata={
            "promptlayer_prompt_name": name,
            "promptlayer_prompt_version": template.get("version"),
            "promptlayer_prompt_id": template.get("id"),
        },
    )
