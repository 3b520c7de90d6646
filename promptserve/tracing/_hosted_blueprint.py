"""A blueprint in the shapes the hosted PromptLayer's `LogRequest` schema accepts.

The hosted service refuses a whole log over one part it does not know, so `hosted_blueprint`
maps each content block outside its set to the nearest block it has, or drops it:
- refusal → text; OpenAI Responses `output_text`/`input_text` and `text-plain` → text;
- images given by URL or data in LangChain's, OpenAI's or Anthropic's shape → image_url;
- file, document, audio (`input_audio` too) and video given by URL or data → media (a data
  URL, format "base64", when given as data);
- redacted thinking → thinking with no text (its encrypted data is dropped, and noted);
- images and files given only by a provider's file id → dropped (nothing to show), noted;
- any other block of the hosted set is kept when it fits, anything else dropped, noted.
Tools take the schema's shapes: OpenAI function tools (from OpenAI chat, Responses API,
Anthropic and Google definitions) and its built-in tool entries (web search, file search,
code execution, ... under the provider's own spelling in `config`); `tool_choice` becomes
"auto", "none", "required" or `{"type": "function", "function": {"name": ...}}`. The notes
say what was dropped or lost and where; the handler puts them in the log's metadata under
DROPPED_KEY. Input is a blueprint of JSON values (as `_blueprints` builds them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from promptserve.tracing import _hosted_schema as hosted
from promptserve.tracing._types import Blueprint

__all__ = [
    "DROPPED_KEY",
    "MAX_TAG",
    "hosted_blueprint",
    "hosted_tags",
    "iso_time",
    "notes_text",
    "thinking_block",
]


DROPPED_KEY = "promptserve_dropped"
"""Metadata key of the notes on what a log left out to fit the hosted schema."""
MAX_TAG = 512
"""The hosted schema's limit on one tag's length."""
_MAX_NOTES = 1024
_MIME = re.compile(r"data:([^;,]+)[;,]")
# Built-in tool types of the hosted schema, and the provider spellings that mean them.
_BUILT_IN = {
    "web_search": "web_search", "web_search_preview": "web_search", "google_search": "web_search",
    "googleSearch": "web_search", "file_search": "file_search",
    "code_interpreter": "code_interpreter", "code_execution": "code_interpreter",
    "codeExecution": "code_interpreter", "image_generation": "image_generation",
    "google_maps": "google_maps", "googleMaps": "google_maps", "url_context": "url_context",
    "urlContext": "url_context", "mcp": "mcp", "bash": "bash", "shell": "shell",
    "local_shell": "shell", "apply_patch": "apply_patch", "text_editor": "text_editor",
}
_DATED = re.compile(r"_\d{8}$|_\d{4}_\d{2}_\d{2}$")  # web_search_20250305, ..._2025_03_11
_TOOL_CHOICE_WORDS = {"auto": "auto", "none": "none", "required": "required", "any": "required"}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def iso_time(epoch: float) -> str:
    """Epoch seconds as the ISO-8601 UTC text the hosted schema asks for."""
    # Always with microseconds: equal-length texts sort as their times do.
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def hosted_tags(tags: Sequence[str]) -> tuple[list[str], list[str]]:
    """Tags cut to the hosted limit (MAX_TAG characters), and notes on the ones cut."""
    notes = [f"tags[{i}] cut to {MAX_TAG} characters" for i, t in enumerate(tags)
             if len(t) > MAX_TAG]
    return ([t[:MAX_TAG] for t in tags] if notes else list(tags)), notes


def notes_text(notes: Sequence[str]) -> str:
    """Notes as one metadata value (metadata values are text), at most 1,024 characters."""
    text = "; ".join(notes)
    return text if len(text) <= _MAX_NOTES else text[: _MAX_NOTES - 1] + "…"


def hosted_blueprint(
    blueprint: Blueprint, where: str, provider: str = "openai"
) -> tuple[Blueprint, list[str]]:
    """`blueprint` in shapes the hosted LogRequest schema accepts, and notes on what it lost.

    `where` names it in the notes ("input", "output"); `provider` is the log's, given to
    built-in tools.
    """
    notes: list[str] = []
    out = dict(blueprint)
    if out.get("type") != "chat":
        out["content"] = _hosted_content(out.get("content") or [], f"{where}.content", notes)
        return out, notes
    out["messages"] = [_hosted_message(m, f"{where}.messages[{i}]", notes)
                       for i, m in enumerate(out.get("messages") or [])]
    for key in ("tools", "tool_choice", "functions", "function_call"):
        value, path = out.pop(key, None), f"{where}.{key}"
        if value is None:
            continue
        if key == "tools":
            value = _hosted_tools(value, provider, path, notes)
        elif key == "tool_choice":
            value = _hosted_tool_choice(value, path, notes)
        elif key == "functions":
            value = _hosted_functions(value, path, notes)
        else:
            value = _hosted_function_choice(value, path, notes)
        if value is not None:
            out[key] = value
    return out, notes


def _hosted_message(message: Mapping[str, Any], where: str, notes: list[str]) -> dict[str, Any]:
    out = dict(message)
    out["content"] = _hosted_content(out.get("content") or [], f"{where}.content", notes)
    legacy = out.get("function_call")
    if legacy is not None:
        call = _function_call(legacy)
        if call is None:
            del out["function_call"]
            notes.append(f"function_call of {where} (not a name and arguments)")
        else:
            out["function_call"] = call
    return out


def _function_call(value: Any) -> dict[str, str] | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments")
    if not isinstance(arguments, str):
        arguments = "" if arguments is None else json.dumps(arguments)
    return {"name": value["name"], "arguments": arguments}


def _hosted_content(blocks: Any, where: str, notes: list[str]) -> list[dict[str, Any]]:
    if isinstance(blocks, str):
        return [_text(blocks)]
    out = []
    for index, block in enumerate(blocks if isinstance(blocks, list) else [blocks]):
        mapped, lost = _hosted_block(block)
        if lost is not None:
            notes.append(f"{lost} in {where}[{index}]")
        if mapped is not None:
            out.append(mapped)
    return out


def _hosted_block(block: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(the nearest block the hosted schema has, or None; what was lost, or None)."""
    if not isinstance(block, Mapping):
        return _text(str(block)), None
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        if len(block) == 2:  # as _blueprints builds them: nothing to check (the common case)
            return dict(block), None
        return (dict(block) if hosted.fits(hosted.CONTENT_BLOCK, block)
                else _text(block["text"])), None
    if kind in ("text-plain", "output_text", "input_text") and isinstance(block.get("text"), str):
        return _text(block["text"]), None
    if kind == "refusal":
        return _text(str(block.get("refusal") or block.get("text") or "")), None
    if kind in ("thinking", "reasoning"):
        return thinking_block(block), None
    if kind == "redacted_thinking":
        return ({"type": "thinking", "thinking": "", "signature": None},
                "the encrypted data of redacted thinking")
    if kind in ("image_url", "image", "input_image"):
        image = _image(block)
        return (image, None) if image is not None else (None, _described(block))
    if kind in ("file", "input_file", "document", "audio", "input_audio", "video"):
        media = _media(block)
        return (media, None) if media is not None else (None, _described(block))
    if isinstance(kind, str) and hosted.fits(hosted.CONTENT_BLOCK, block):
        return dict(block), None  # a block of the hosted set (code, media, tool results...)
    if kind in hosted.content_types():
        return None, f"{_described(block)} that does not fit"
    return None, _described(block)


def thinking_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A thinking or reasoning block (LangChain's, Anthropic's, OpenAI Responses' summary) as
    PromptLayer's thinking block."""
    text = block.get("thinking", block.get("reasoning"))
    if text is None and isinstance(block.get("summary"), list):  # OpenAI Responses reasoning
        text = "\n\n".join(str(s.get("text", "")) for s in block["summary"]
                           if isinstance(s, Mapping))
    signature = block.get("signature")
    return {"type": "thinking", "thinking": "" if text is None else str(text),
            "signature": signature if isinstance(signature, str) else None}


def _source(block: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(URL, base64 data, MIME type) of a file-like block in any of the shapes LangChain,
    OpenAI and Anthropic use; data URLs count as URLs."""
    mime = block.get("mime_type")
    nested = block.get("source") if isinstance(block.get("source"), Mapping) else None
    if nested is not None:  # Anthropic: {"source": {"type": "base64"|"url", ...}}
        mime = mime or nested.get("media_type")
        if nested.get("type") == "url":
            return _str(nested.get("url")), None, _str(mime)
        return None, _str(nested.get("data")) if nested.get("type") == "base64" else None, \
            _str(mime)
    for key in ("image_url", "file", "input_audio"):  # OpenAI: {"<kind>": {...}}
        inner = block.get(key)
        if isinstance(inner, str):
            return inner, None, _str(mime)
        if isinstance(inner, Mapping):
            url = inner.get("url", inner.get("file_data"))
            if key == "input_audio" and isinstance(inner.get("data"), str):
                return None, inner["data"], f"audio/{inner.get('format') or 'wav'}"
            return _str(url), None, _str(mime)
    url = block.get("url", block.get("file_url", block.get("file_data")))
    data = block.get("base64")
    if block.get("source_type") == "base64":  # LangChain 0.3 standard blocks
        data = block.get("data")
    return _str(url), _str(data), _str(mime)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _image(block: Mapping[str, Any]) -> dict[str, Any] | None:
    url, data, mime = _source(block)
    if url is None and data is not None:
        url = f"data:{mime or 'image/png'};base64,{data}"
    if url is None:
        return None
    image: dict[str, Any] = {"url": url}
    nested = block.get("image_url")
    detail = nested.get("detail") if isinstance(nested, Mapping) else block.get("detail")
    if isinstance(detail, str):
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _media(block: Mapping[str, Any]) -> dict[str, Any] | None:
    url, data, mime = _source(block)
    kind = block.get("type")
    default = {"audio": "audio/wav", "input_audio": "audio/wav", "video": "video/mp4"}.get(
        str(kind), "application/octet-stream")
    if data is not None:
        mime = mime or default
        return {"type": "media",
                "media": {"type": mime, "url": f"data:{mime};base64,{data}", "format": "base64"}}
    if url is None:
        return None
    if url.startswith("data:"):
        found = _MIME.match(url)
        mime = mime or (found.group(1) if found else None)
    return {"type": "media", "media": {"type": mime or default, "url": url,
                                       "format": "base64" if url.startswith("data:") else "url"}}


def _described(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    what = f"{kind} block" if isinstance(kind, str) else "a block without a type"
    ident = _file_id(block)
    return f"{what} by file id {ident}" if ident else what


def _file_id(block: Mapping[str, Any]) -> str | None:
    for holder in (block, block.get("file"), block.get("image_url"), block.get("source")):
        if isinstance(holder, Mapping):
            ident = holder.get("file_id", holder.get("id") if holder is not block else None)
            if ident is None and holder is block and block.get("source_type") == "id":
                ident = block.get("id")
            if isinstance(ident, str):
                return ident
    return None


def _hosted_tools(value: Any, provider: str, where: str, notes: list[str]) -> list[Any] | None:
    if not isinstance(value, list):
        notes.append(f"{where} (not a list)")
        return None
    out: list[Any] = []
    for index, tool in enumerate(value):
        mapped = [t for t in _tool(tool, provider) if hosted.fits(hosted.TOOL, t)]
        if not mapped:
            notes.append(f"{_tool_described(tool)} in {where}[{index}]")
        out.extend(mapped)
    return out or None


def _tool_described(tool: Any) -> str:
    if not isinstance(tool, Mapping):
        return "a tool that is not an object"
    name, kind = tool.get("name"), tool.get("type")
    what = " ".join(str(part) for part in (kind, name) if isinstance(part, str))
    return f"tool {what} (a shape it does not accept)" if what else (
        "a tool of a shape it does not accept")


def _tool(tool: Any, provider: str) -> list[dict[str, Any]]:
    """One tool definition as the hosted schema's tools (a Google one may hold several)."""
    if not isinstance(tool, Mapping):
        return []
    kind = tool.get("type")
    if kind == "function" or (kind is None and isinstance(tool.get("function"), Mapping)):
        inner = tool.get("function")
        function = _function(inner if isinstance(inner, Mapping) else tool)  # Responses: flat
        return [{"type": "function", "function": function}] if function else []
    declarations = tool.get("function_declarations", tool.get("functionDeclarations"))
    if isinstance(declarations, list):  # Google
        functions = [_function(d) for d in declarations if isinstance(d, Mapping)]
        return [{"type": "function", "function": f} for f in functions if f]
    if kind in (None, "custom") and "input_schema" in tool:  # Anthropic client tool
        function = _function(tool)
        return [{"type": "function", "function": function}] if function else []
    built_in = _built_in(kind, tool)
    if built_in is None:
        return []
    name = tool.get("name")
    config = {k: v for k, v in tool.items() if k not in ("type", "id", "name", "description")}
    if isinstance(kind, str) and kind != built_in:
        config["type"] = kind  # the provider's own spelling
    return [{"type": built_in, "id": str(tool.get("id") or name or built_in),
             "name": str(name or built_in), "description": str(tool.get("description") or ""),
             "provider": provider, "config": config}]


def _built_in(kind: Any, tool: Mapping[str, Any]) -> str | None:
    if isinstance(kind, str):
        return _BUILT_IN.get(_DATED.sub("", kind).removesuffix("_preview")) or _BUILT_IN.get(kind)
    if kind is None and len(tool) == 1:  # Google: {"google_search": {}}
        return _BUILT_IN.get(next(iter(tool)))
    return None


def _function(definition: Mapping[str, Any]) -> dict[str, Any] | None:
    name = definition.get("name")
    if not isinstance(name, str) or not name:
        return None
    out: dict[str, Any] = {"name": name}
    if isinstance(definition.get("description"), str):
        out["description"] = definition["description"]
    parameters = next((definition[k] for k in ("parameters", "input_schema",
                                               "parameters_json_schema")
                       if isinstance(definition.get(k), Mapping)), None)
    if parameters is not None:
        out["parameters"] = dict(parameters)
    if isinstance(definition.get("strict"), bool):
        out["strict"] = definition["strict"]
    return out


def _hosted_tool_choice(value: Any, where: str, notes: list[str]) -> Any:
    choice = _tool_choice(value)
    if choice is None or not hosted.fits(hosted.TOOL_CHOICE, choice):
        notes.append(f"{where} (a shape it does not accept)")
        return None
    if isinstance(value, Mapping) and value.get("type") == "allowed_tools":
        notes.append(f"the allowed tools of {where}")
    return choice


def _tool_choice(value: Any) -> Any:
    if isinstance(value, bool):
        return "required" if value else "none"
    if isinstance(value, str):
        return _TOOL_CHOICE_WORDS.get(value) or _named(value)
    if not isinstance(value, Mapping):
        return None
    kind = value.get("type")
    function = value.get("function")
    if kind == "function" and isinstance(function, Mapping):
        return _named(function.get("name"))
    if kind in ("function", "tool"):  # Responses API, Anthropic
        return _named(value.get("name"))
    if isinstance(kind, str) and kind in _TOOL_CHOICE_WORDS:  # Anthropic {"type": "any"}
        return _TOOL_CHOICE_WORDS[kind]
    if kind == "allowed_tools":
        return _TOOL_CHOICE_WORDS.get(str(value.get("mode")))
    config = value.get("function_calling_config")  # Google tool_config
    if isinstance(config, Mapping):
        mode = str(config.get("mode", "")).lower()
        allowed = config.get("allowed_function_names")
        if mode == "any" and isinstance(allowed, list) and len(allowed) == 1:
            return _named(allowed[0])
        return _TOOL_CHOICE_WORDS.get(mode)
    return None


def _named(name: Any) -> dict[str, Any] | None:
    return {"type": "function", "function": {"name": name}} if isinstance(name, str) else None


def _hosted_functions(value: Any, where: str, notes: list[str]) -> list[Any] | None:
    functions = [_function(f) if isinstance(f, Mapping) else None
                 for f in (value if isinstance(value, list) else [value])]
    for index, function in enumerate(functions):
        if function is None:
            notes.append(f"{where}[{index}] (a shape it does not accept)")
    return [f for f in functions if f is not None] or None


def _hosted_function_choice(value: Any, where: str, notes: list[str]) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return {"name": value["name"]}
    notes.append(f"{where} (a shape it does not accept)")
    return None

