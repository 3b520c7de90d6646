"""The one error a template raises when it cannot become a chain."""

from __future__ import annotations

__all__ = ["TemplateConversionError"]


class TemplateConversionError(ValueError):
    """A registry template that cannot be turned into a LangChain prompt or model."""

    def __init__(self, template_name: str, reason: str, *, path: str | None = None) -> None:
        self.template_name = template_name
        self.reason = reason
        # Where in the blueprint (or metadata) the problem sits, e.g. "messages[1].role".
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(f"template {template_name!r} cannot be converted: {where}{reason}")
