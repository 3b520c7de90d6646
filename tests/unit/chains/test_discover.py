"""The catalog: the chains of a package's modules and of template files with a `serve:` section."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.runnables import RunnableSequence

from app.publishing.files import ServeSection
from app.service._catalog import CatalogError, check_unique, discover_chains, template_chain
from chains import TEMPLATES_DIR
from promptserve import Chain, RegistryPrompt
from tests.unit.prompts.templates import installed, raw_template

_numbers = itertools.count()

Package = Callable[..., str]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Package]:
    """Writes a package of chain modules (file name → source) on sys.path; its name."""
    names: list[str] = []

    def write(**modules: str) -> str:
        name = f"catalog_test_pkg_{next(_numbers)}"
        root = tmp_path / "packages" / name
        root.mkdir(parents=True)
        (root / "__init__.py").write_text("")
        for module, source in modules.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path / "packages"))
    yield write
    for module in list(sys.modules):
        if any(module == n or module.startswith(f"{n}.") for n in names):
            del sys.modules[module]


def _module(path: str, prompt: str = "example", *, name: str = "") -> str:
    return f"""
        from langchain_core.output_parsers import StrOutputParser
        from promptserve import Chain, RegistryPrompt

        prompt = RegistryPrompt({prompt!r})
        CHAIN = Chain({path!r}, prompt | StrOutputParser(), name={name!r})
    """


def _template_file(directory: Path, file: str, serve: dict[str, Any] | None) -> None:
    data = yaml.safe_load((TEMPLATES_DIR / f"{file}.yaml").read_text())
    if serve is None:
        data.pop("serve", None)
    else:
        data["serve"] = serve
    directory.mkdir(exist_ok=True)
    (directory / f"{file}.yaml").write_text(yaml.safe_dump(data))


def test_discover_finds_each_modules_chain_sorted_by_module(package: Package) -> None:
    name = package(
        b_second=_module("/second", "slogan"),
        a_first="""
            from langchain_core.output_parsers import StrOutputParser
            from promptserve import Chain, RegistryPrompt

            one, two = RegistryPrompt("one"), RegistryPrompt("two", version=2)
            CHAINS = [Chain("/one", one | StrOutputParser()),
                      Chain("/two", two, name="second_prompt")]
        """,
        _private=_module("/private"),
        nothing="VALUE = 1\n",
    )
    chains = discover_chains(name)
    assert [(c.path, c.name) for c in chains] == [
        ("/one", "one"), ("/two", "second_prompt"), ("/second", "second")
    ]
    assert [p.selector for c in chains for p in c.registry_prompts] == [
        ("one", "prod", None), ("two", None, 2), ("slogan", "prod", None)
    ]


def test_template_files_with_a_route_are_chains_too(package: Package, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    _template_file(templates, "example", {"path": "/example"})
    _template_file(templates, "extract", {"path": "/facts", "output": "json", "version": 3,
                                          "name": "facts"})
    _template_file(templates, "slogan", None)  # no route: a prompt only
    chains = discover_chains(package(mod=_module("/mod")), templates_dir=templates)
    assert [(c.path, c.name) for c in chains] == [
        ("/mod", "mod"), ("/example", "example"), ("/facts", "facts")
    ]
    example, facts = chains[1].runnable, chains[2].runnable
    assert isinstance(example, RunnableSequence) and isinstance(facts, RunnableSequence)
    assert isinstance(example.last, StrOutputParser)
    assert isinstance(facts.last, JsonOutputParser)
    assert [p.selector for p in chains[2].registry_prompts] == [("extract", None, 3)]
    # A folder that does not exist adds nothing.
    assert len(discover_chains(package(), templates_dir=tmp_path / "none")) == 0


def test_two_chains_on_one_path_are_refused(package: Package, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="two chains have the path '/same'"):
        discover_chains(package(a=_module("/same"), b=_module("/same", name="other")))
    templates = tmp_path / "templates"
    _template_file(templates, "example", {"path": "/example"})
    with pytest.raises(CatalogError, match="path '/example'"):
        discover_chains(package(a=_module("/example", name="mine")), templates_dir=templates)


def test_two_chains_of_one_name_are_refused(package: Package) -> None:
    with pytest.raises(CatalogError, match="two chains have the name 'x'"):
        discover_chains(package(a=_module("/a", name="x"), b=_module("/b", name="x")))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("CHAIN = 'not a chain'\n", r"\.bad: 'not a chain' is not a promptserve Chain"),
        ("from langchain_core.runnables import RunnableLambda\n"
         "CHAIN = RunnableLambda(lambda x: x)\n", r"\.bad: .* is not a promptserve Chain"),
        ("CHAINS = 'abc'\n", r"\.bad: CHAINS must be a list of Chain"),
        ("CHAINS = [1]\n", r"\.bad: 1 is not a promptserve Chain"),
    ],
)
def test_a_module_whose_chain_is_not_a_chain_is_refused(
    package: Package, source: str, message: str
) -> None:
    name = package(bad=source)
    with pytest.raises(CatalogError, match=f"{name}{message}"):
        discover_chains(name)


def test_template_chain_text_and_json() -> None:
    text = template_chain("example", ServeSection(path="/example"))
    assert (text.path, text.name) == ("/example", "example")
    (prompt,) = text.registry_prompts
    assert prompt.selector == ("example", "prod", None)
    installed(prompt, raw_template("example"), "A slogan.")
    assert text.runnable.invoke({"product": "toasters"}) == "A slogan."
    assert text.runnable.get_output_jsonschema()["type"] == "string"

    json_chain = template_chain("extract", ServeSection(path="/x/y", output="json",
                                                         label="beta"))
    assert (json_chain.path, json_chain.name) == ("/x/y", "x_y")
    (extract,) = json_chain.registry_prompts
    assert extract.selector == ("extract", "beta", None)
    installed(extract, raw_template("extract"), '{"name": "Ann", "sentiment": "neutral"}')
    assert json_chain.runnable.invoke({"text": "t"}) == {"name": "Ann", "sentiment": "neutral"}

    named = template_chain("slogan", ServeSection(path="/s", version=2, name="slogans"))
    assert named.name == "slogans"
    assert named.registry_prompts[0].selector == ("slogan", None, 2)


def test_serve_sections_refuse_odd_routes() -> None:
    for serve in ({"path": "nope"}, {"path": "/a", "output": "xml"},
                  {"path": "/a", "label": "prod", "version": 1}, {"path": "/a", "extra": 1}):
        with pytest.raises(ValueError):
            ServeSection.model_validate(serve)


@pytest.mark.parametrize("path", ["a", "/a/", "/", "/a b", ""])
def test_a_chain_path_must_look_like_a_route(path: str) -> None:
    with pytest.raises(ValueError, match="must look like"):
        Chain(path, RegistryPrompt("a"))


def test_a_chain_needs_a_runnable() -> None:
    with pytest.raises(TypeError, match="Runnable"):
        Chain("/a", lambda x: x)  # type: ignore[arg-type]


def test_check_unique_keeps_the_order() -> None:
    chains = [Chain("/b", RegistryPrompt("b")), Chain("/a", RegistryPrompt("a"))]
    assert check_unique(iter(chains)) == chains


def test_the_bundled_catalog() -> None:
    chains = {chain.path: chain for chain in discover_chains("chains", TEMPLATES_DIR)}
    assert {"/example", "/critique", "/extract", "/tools"} <= set(chains)
    assert [p.selector for p in chains["/example"].registry_prompts] == [
        ("example", "prod", None)
    ]
    assert [p.prompt_name for p in chains["/critique"].registry_prompts] == [
        "slogan", "critique"
    ]
    # /tools uses its prompt inside a generator: declared.
    assert [p.prompt_name for p in chains["/tools"].registry_prompts] == ["assistant"]
