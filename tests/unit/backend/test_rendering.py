"""Variable extraction and rendering of blueprints (pure functions)."""

from __future__ import annotations

import pytest

from app.backend.rendering import (
    TemplateSyntaxError,
    complete_input_variables,
    input_variables_of,
    render_blueprint,
    render_text,
    text_variables,
)


def message(text: str, fmt: str | None = None, role: str = "user") -> dict:
    out: dict = {"role": role, "content": [{"type": "text", "text": text}]}
    if fmt:
        out["template_format"] = fmt
    return out


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("Hello {name}, {name} {{not}} {other!r:>5}", "f-string", ["name", "other"]),
        ("{user.name} {items[0]}", "f-string", ["user", "items"]),
        ("no vars", "f-string", []),
        ("{{ b }} {% for x in xs %}{{ x }}{% endfor %} {{ a.b }}", "jinja2", ["a", "b", "xs"]),
    ],
)
def test_text_variables(text: str, fmt: str, expected: list[str]) -> None:
    assert text_variables(text, fmt) == expected


@pytest.mark.parametrize(
    ("text", "fmt"), [("{open", "f-string"), ("{}", "f-string"), ("{% if %}", "jinja2")]
)
def test_syntax_errors(text: str, fmt: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        text_variables(text, fmt)


@pytest.mark.parametrize(
    ("text", "fmt", "variables", "expected"),
    [
        ("Hi {name}!", "f-string", {"name": "Ann"}, "Hi Ann!"),
        ("Hi {name}!", "f-string", {}, "Hi !"),
        ("Hi {name}!", "f-string", {"name": None}, "Hi !"),
        ("{{literal}} {n:03d}", "f-string", {"n": 7}, "{literal} 007"),
        ("{{ name | upper }}{{ missing }}{{ missing.deeper }}", "jinja2", {"name": "a"}, "A"),
        ("{% for x in xs %}{{ x }},{% endfor %}", "jinja2", {"xs": [1, 2]}, "1,2,"),
        # Sandbox: unsafe attributes are undefined (empty), never the real object.
        ("{{ ''.__class__.__mro__ }}", "jinja2", {}, ""),
        ("{n:d}", "f-string", {"n": "text"}, "{n:d}"),
    ],
)
def test_render_text(text: str, fmt: str, variables: dict, expected: str) -> None:
    assert render_text(text, variables, fmt) == expected


def test_input_variables_of_chat_with_placeholder() -> None:
    blueprint = {
        "type": "chat",
        "messages": [
            message("{a} {b}", role="system"),
            {"role": "placeholder", "name": "history"},
            message("{{ c }} {{ a }}", "jinja2"),
        ],
    }
    assert input_variables_of(blueprint) == ["a", "b", "history", "c"]
    completed = complete_input_variables(blueprint)
    assert completed["input_variables"] == ["a", "b", "history", "c"]
    assert [m.get("input_variables") for m in completed["messages"]] == [
        ["a", "b"],
        None,
        ["a", "c"],
    ]
    assert "input_variables" not in blueprint  # the input is not modified


def test_complete_keeps_given_input_variables() -> None:
    blueprint = {
        "type": "completion",
        "content": [{"type": "text", "text": "{x}"}],
        "input_variables": ["x", "y"],
    }
    assert complete_input_variables(blueprint)["input_variables"] == ["x", "y"]


def test_render_blueprint() -> None:
    history = [message("earlier", role="assistant")]
    blueprint = {
        "type": "chat",
        "messages": [
            message("About {topic}", role="system"),
            {"role": "placeholder", "name": "history"},
            {"role": "placeholder", "name": "unfilled"},
            {
                "role": "user",
                "template_format": "jinja2",
                "content": [
                    {"type": "text", "text": "{{ topic }}?"},
                    {"type": "image_url", "image_url": {"url": "{topic}"}},
                ],
            },
        ],
    }
    rendered = render_blueprint(blueprint, {"topic": "tea", "history": history})
    assert rendered["messages"][0]["content"][0]["text"] == "About tea"
    assert rendered["messages"][1] == history[0]
    assert rendered["messages"][2] == {"role": "placeholder", "name": "unfilled"}
    assert rendered["messages"][3]["content"] == [
        {"type": "text", "text": "tea?"},
        {"type": "image_url", "image_url": {"url": "{topic}"}},
    ]
    assert blueprint["messages"][0]["content"][0]["text"] == "About {topic}"


def test_render_completion() -> None:
    blueprint = {
        "type": "completion",
        "template_format": "jinja2",
        "content": [{"type": "text", "text": "{{ a }}"}],
    }
    assert render_blueprint(blueprint, {"a": 1})["content"] == [{"type": "text", "text": "1"}]
