"""Prompt registry through the official SDK: publish, get, labels, list, rendering, 404/400."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from promptlayer import AsyncPromptLayer, PromptLayer
from promptlayer.exceptions import PromptLayerBadRequestError, PromptLayerNotFoundError

from app.backend.store.registry import get_version
from app.backend.store.schema import prompt_templates, prompt_versions, release_labels
from tests.integration.backend.conftest import API_KEY, OPENAI_MODEL, Backend, chat


def publish(pl: PromptLayer, name: str, text: str, **extra: object) -> dict:
    body = {"prompt_name": name, "prompt_template": chat(text), "metadata": OPENAI_MODEL}
    return pl.templates.publish({**body, **extra})


def user_text(response: dict) -> str:
    return response["prompt_template"]["messages"][1]["content"][0]["text"]


def test_versions_and_labels(pl: PromptLayer, backend: Backend, name: str) -> None:
    first = publish(pl, name, "v1 {topic}", commit_message="first", tags=["a"])
    second = publish(pl, name, "v2 {topic}", release_labels=["prod"])
    third = publish(pl, name, "v3 {topic}")
    assert [first["version_number"], second["version_number"], third["version_number"]] == [1, 2, 3]
    assert first["id"] == second["id"] == third["id"]
    assert second["release_labels"] == ["prod"]

    assert pl.templates.get(name)["version"] == 3
    assert user_text(pl.templates.get(name, {"version": 1})) == "v1 {topic}"
    by_label = pl.templates.get(name, {"label": "prod"})
    assert (by_label["version"], user_text(by_label)) == (2, "v2 {topic}")
    # Label wins when both are given.
    assert pl.templates.get(name, {"label": "prod", "version": 1})["version"] == 2
    # By numeric template id too.
    assert pl.templates.get(str(first["id"]))["prompt_name"] == name

    def stored(c: sa.Connection) -> tuple[list, list, list]:
        template = c.execute(
            sa.select(prompt_templates).where(prompt_templates.c.name == name)
        ).one()
        versions = c.execute(
            sa.select(prompt_versions.c.version, prompt_versions.c.commit_message)
            .where(prompt_versions.c.template_id == template.id)
            .order_by(prompt_versions.c.version)
        ).all()
        labels = c.execute(
            sa.select(release_labels.c.label, prompt_versions.c.version)
            .join(prompt_versions, prompt_versions.c.id == release_labels.c.version_id)
            .where(release_labels.c.template_id == template.id)
        ).all()
        return template.tags, [tuple(v) for v in versions], [tuple(x) for x in labels]

    tags, versions, labels = backend.read(stored)
    assert tags == ["a"]
    assert versions == [(1, "first"), (2, None), (3, None)]
    assert labels == [("prod", 2)]

    # Publishing with the label moves it: one version carries it.
    publish(pl, name, "v4", release_labels=["prod", "staging"])
    assert backend.read(stored)[2] == [("prod", 4), ("staging", 4)]
    assert pl.templates.get(name, {"label": "prod"})["version"] == 4


def test_input_variables_computed_at_publish(pl: PromptLayer, backend: Backend, name: str) -> None:
    blueprint = {
        "type": "chat",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "{a} and {{literal}}"}]},
            {"role": "placeholder", "name": "history"},
            {
                "role": "user",
                "template_format": "jinja2",
                "content": [{"type": "text", "text": "{{ b }} {% if c %}x{% endif %}"}],
            },
        ],
    }
    pl.templates.publish({"prompt_name": name, "prompt_template": blueprint})
    stored = backend.read(lambda c: get_version(c, identifier=name, version=None, label=None))
    assert stored.prompt_template["input_variables"] == ["a", "history", "b", "c"]
    assert stored.prompt_template["messages"][0]["input_variables"] == ["a"]
    assert stored.prompt_template["messages"][2]["input_variables"] == ["b", "c"]


def test_rendering(pl: PromptLayer, name: str) -> None:
    blueprint = {
        "type": "chat",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Talk about {topic} {{x}}"}]},
            {
                "role": "user",
                "template_format": "jinja2",
                "content": [{"type": "text", "text": "{{ topic | upper }}{{ missing }}!"}],
            },
        ],
    }
    pl.templates.publish(
        {"prompt_name": name, "prompt_template": blueprint, "metadata": OPENAI_MODEL}
    )
    rendered = pl.templates.get(name, {"input_variables": {"topic": "cats"}})
    texts = [m["content"][0]["text"] for m in rendered["prompt_template"]["messages"]]
    assert texts == ["Talk about cats {x}", "CATS!"]
    assert rendered["llm_kwargs"] == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Talk about cats {x}"},
            {"role": "user", "content": "CATS!"},
        ],
        "temperature": 0.2,
    }
    # Missing and null f-string variables render as empty.
    blank = pl.templates.get(name, {"input_variables": {"topic": None}})
    assert blank["prompt_template"]["messages"][0]["content"][0]["text"] == "Talk about  {x}"
    raw = pl.templates.get(
        name, {"input_variables": {"topic": "cats"}, "skip_input_variable_rendering": True}
    )
    assert raw["prompt_template"]["messages"][0]["content"][0]["text"] == "Talk about {topic} {{x}}"
    # No variables given: nothing is rendered.
    assert user_text(pl.templates.get(name)) == "{{ topic | upper }}{{ missing }}!"


def test_completion_llm_kwargs(pl: PromptLayer, name: str) -> None:
    blueprint = {"type": "completion", "content": [{"type": "text", "text": "Say {word}"}]}
    pl.templates.publish(
        {"prompt_name": name, "prompt_template": blueprint, "metadata": OPENAI_MODEL}
    )
    got = pl.templates.get(name, {"input_variables": {"word": "hi"}})
    assert got["prompt_template"]["input_variables"] == ["word"]
    assert got["llm_kwargs"] == {"model": "gpt-4o-mini", "prompt": "Say hi", "temperature": 0.2}


def test_not_found(pl: PromptLayer, name: str) -> None:
    with pytest.raises(PromptLayerNotFoundError, match="not found"):
        pl.templates.get(name)
    publish(pl, name, "x")
    with pytest.raises(PromptLayerNotFoundError, match="version 7"):
        pl.templates.get(name, {"version": 7})
    with pytest.raises(PromptLayerNotFoundError, match="label 'nope'"):
        pl.templates.get(name, {"label": "nope"})


async def test_async_get_list_and_not_found(
    apl: AsyncPromptLayer, pl: PromptLayer, name: str
) -> None:
    publish(pl, name, "hello {who}", release_labels=["live"])
    got = await apl.templates.get(name, {"label": "live", "input_variables": {"who": "you"}})
    assert (got["version"], user_text(got)) == (1, "hello you")
    items = await apl.templates.all(label="live")
    assert name in [item["prompt_name"] for item in items]
    with pytest.raises(PromptLayerNotFoundError):
        await apl.templates.get(name + "-missing")


def test_list_paging(pl: PromptLayer, backend: Backend, name: str) -> None:
    names = [f"{name}-{i}" for i in range(5)]
    for n in names:
        publish(pl, n, "one")
        publish(pl, n, "two", release_labels=["gold"] if n.endswith(("1", "3")) else None)
    headers = {"X-API-KEY": API_KEY}
    page = httpx.get(
        f"{backend.url}/prompt-templates",
        params={"page": 2, "per_page": 2, "name": name.upper()},
        headers=headers,
    ).json()
    assert [i["prompt_name"] for i in page["items"]] == [names[2], names[1]]
    assert [i["version"] for i in page["items"]] == [2, 2]
    assert (page["total"], page["pages"], page["has_next"], page["has_prev"]) == (5, 3, True, True)
    assert (page["next_num"], page["prev_num"]) == (3, 1)
    labeled = httpx.get(
        f"{backend.url}/prompt-templates", params={"label": "gold", "name": name}, headers=headers
    ).json()
    assert [i["prompt_name"] for i in labeled["items"]] == [names[3], names[1]]
    # The SDK returns the items of a page, newest first.
    newest = pl.templates.all(page=1, per_page=2)
    assert [i["prompt_name"] for i in newest] == [names[4], names[3]]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt_template": chat("x")}, "prompt_name"),
        ({"prompt_name": "", "prompt_template": chat("x")}, "prompt_name"),
        ({"prompt_name": "n", "prompt_template": {"type": "image"}}, "type must be"),
        (
            {"prompt_name": "n", "prompt_template": {"type": "chat", "messages": [{"role": "x"}]}},
            "messages[0].role",
        ),
        (
            {
                "prompt_name": "n",
                "prompt_template": {
                    "type": "chat",
                    "messages": [{"role": "user", "content": "hi"}],
                },
            },
            "messages[0].content",
        ),
        ({"prompt_name": "n", "prompt_template": chat("x"), "commit_message": "c" * 73}, "72"),
        ({"prompt_name": "n", "prompt_template": chat("{bad")}, "f-string"),
        (
            {"prompt_name": "n", "prompt_template": chat("{% if %}", template_format="jinja2")},
            "jinja2",
        ),
        ({"prompt_name": "n"}, "prompt_template"),
        ({"prompt_name": "n", "prompt_template": chat("x"), "tags": "a"}, "tags"),
    ],
)
def test_invalid_publish_is_400(pl: PromptLayer, body: dict, fragment: str) -> None:
    with pytest.raises(PromptLayerBadRequestError) as caught:
        pl.templates.publish(body)
    assert fragment in str(caught.value)
