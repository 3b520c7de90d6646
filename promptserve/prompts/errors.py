"""The errors of registry prompts: a template that cannot be built, one not loaded yet, and a
model answer that misses the template's schema."""

from __future__ import annotations

__all__ = ["ModelOutputError", "PromptNotLoadedError", "TemplateConversionError"]


class TemplateConversionError(ValueError):
    """A registry template that cannot be turned into a LangChain prompt or model."""

    def __init__(self, template_name: str, reason: str, *, path: str | None = None) -> None:
        self.template_name = template_name
        self.reason = reason
        # Where in the blueprint (or metadata) the problem sits, e.g. "messages[1].role".
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(f"template {template_name!r} cannot be converted: {where}{reason}")


class PromptNotLoadedError(LookupError):
    """A registry prompt ran before any version of it was fetched."""

    def __init__(self, prompt_name: str) -> None:
        self.prompt_name = prompt_name
        super().__init__(
            f"registry prompt {prompt_name!r} has no version: serve its chain with "
            "promptserve (its store loads it), or set PROMPTLAYER_API_KEY (and "
            "PROMPTLAYER_BASE_URL) so that it fetches one at its first call"
        )


class ModelOutputError(Exception):
    """The model answered, but not in the shape its prompt's schema asks for (a 502)."""

    def __init__(self, prompt_name: str, version: int, problem: str) -> None:
        self.prompt_name = prompt_name
        self.version = version
        self.problem = problem
        super().__init__(f"prompt {prompt_name!r} version {version}: {problem}")
