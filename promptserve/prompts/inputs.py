"""The pydantic input type of a chain: one field per prompt variable."""

from __future__ import annotations

import re
import warnings
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.prompts import BasePromptTemplate, ChatPromptTemplate, MessagesPlaceholder
from pydantic import BaseModel, ConfigDict, create_model

from promptserve.prompts.errors import TemplateConversionError

__all__ = ["input_model"]


def input_model(
    prompt: BasePromptTemplate[Any], *, template_name: str, model_name: str = "Input"
) -> type[BaseModel]:
    """A model with a required `str` per variable and a message list per placeholder."""
    placeholders = _placeholders(prompt)
    fields: dict[str, Any] = {}
    for name in prompt.input_variables:
        if name.startswith("_") or name == "model_config":
            # pydantic cannot have such a field; LangServe validates input with this model.
            raise TemplateConversionError(
                template_name,
                f"input variable {name!r} cannot be a request field; rename it",
                path="input_variables",
            )
        fields[name] = (list[AnyMessage], ...) if name in placeholders else (str, ...)
    config = ConfigDict(extra="forbid", protected_namespaces=())
    class_name = _class_name(model_name)
    if not any(hasattr(BaseModel, name) for name in fields):
        return create_model(class_name, __config__=config, **fields)
    # A variable named like a BaseModel method ("json", "copy") still works as a field
    # (LangServe reads fields with getattr); only pydantic's notice about it is silenced,
    # and only here: catch_warnings is process-wide, so the common path avoids it.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r'Field name ".*" in ".*" shadows an attribute', category=UserWarning
        )
        return create_model(class_name, __config__=config, **fields)


def _placeholders(prompt: BasePromptTemplate[Any]) -> set[str]:
    if not isinstance(prompt, ChatPromptTemplate):
        return set()
    return {m.variable_name for m in prompt.messages if isinstance(m, MessagesPlaceholder)}


def _class_name(name: str) -> str:
    # OpenAPI schema names come from this; keep them identifier-like.
    cleaned = re.sub(r"\W+", "_", name).strip("_") or "Input"
    return cleaned if cleaned[0].isalpha() else f"Input_{cleaned}"
