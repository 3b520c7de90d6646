"""Variables of one template text, checked against what LangChain can format."""

from __future__ import annotations

import string

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["TEMPLATE_FORMATS", "escape_literal", "text_variables"]

TEMPLATE_FORMATS = ("f-string", "jinja2")

# Same environment class LangChain formats jinja2 with, so what parses here formats there.
_JINJA = SandboxedEnvironment()
_FORMATTER = string.Formatter()


def text_variables(text: str, template_format: str) -> list[str]:
    """Names one text uses, in order of first use; ValueError says why a text is unusable."""
    if template_format == "jinja2":
        return _jinja_variables(text)
    if template_format == "f-string":
        return _fstring_variables(text)
    raise ValueError(f"unknown template_format {template_format!r} (use 'f-string' or 'jinja2')")


def _fstring_variables(text: str) -> list[str]:
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        hint = "write {{ and }} for literal braces"
        raise ValueError(f"malformed f-string: {exc} ({hint})") from exc
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise ValueError(f"malformed f-string: positional field {{{field}}} needs a name")
        if "." in field or "[" in field:
            # LangChain refuses attribute access and indexing in f-strings (sandbox escapes).
            raise ValueError(
                f"f-string field {{{field}}} uses attribute access or indexing, "
                "which LangChain does not allow; use jinja2 for that"
            )
        if field not in names:
            names.append(field)
    return names


def _jinja_variables(text: str) -> list[str]:
    try:
        ast = _JINJA.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"malformed jinja2 template: {exc.message} (line {exc.lineno})") from exc
    # A set comes back: sort it so that errors and schemas are stable.
    return sorted(jinja2.meta.find_undeclared_variables(ast))


def escape_literal(text: str, template_format: str) -> str:
    """`text` written so that formatting it in `template_format` gives it back unchanged."""
    if template_format == "jinja2":
        return "{% raw %}" + text + "{% endraw %}" if ("{" in text or "}" in text) else text
    return text.replace("{", "{{").replace("}", "}}")
