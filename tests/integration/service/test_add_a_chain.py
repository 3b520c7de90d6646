"""A chain added as the README's "Add a chain" says: the README's own example, as a module of
a team's package, and a template file with a `serve:` section, both served and traced."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from app.service import create_app
from chains import TEMPLATES_DIR
from tests.integration.service.conftest import Service, service_settings
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

README = Path(__file__).resolve().parents[3] / "README.md"


def _readme_example() -> str:
    section = README.read_text().split("## Add a chain", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README's 'Add a chain' has no Python example"
    return match.group(1)


def test_the_readmes_chain_and_a_yaml_chain_are_served_and_traced(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "code" / "teamchains"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "critique.py").write_text(_readme_example())
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    settings = service_settings(tmp_path / "service", fake_llm[1],
                                chains_package="teamchains")
    haiku = yaml.safe_load((TEMPLATES_DIR / "slogan.yaml").read_text())
    haiku["name"] = "haiku"
    haiku["serve"] = {"path": "/haiku"}
    (settings.templates_dir / "haiku.yaml").write_text(yaml.safe_dump(haiku))

    with serve_in_thread(create_app(settings)) as url:
        body = httpx.post(f"{url}/critique/invoke", json={"input": {"product": "vans"}},
                          timeout=30).json()
        slogan = "echo: Write a slogan for vans."
        assert body["output"] == {"slogan": slogan,
                                  "critique": f"echo: Critique this slogan: {slogan}"}
        assert len(body["metadata"]["promptlayer_request_ids"]) == 2
        assert body["metadata"]["promptlayer_prompt_versions"] == {"slogan": 1, "critique": 1}

        haiku_body = httpx.post(f"{url}/haiku/invoke", json={"input": {"product": "vans"}},
                                timeout=30).json()
        assert haiku_body["output"] == slogan
        assert haiku_body["metadata"]["promptlayer_prompt_versions"] == {"haiku": 1}
        # The package replaced `chains`: its modules' chains are not served.
        assert httpx.post(f"{url}/tools/invoke", json={"input": {"question": "1"}}
                          ).status_code == 404


def test_two_chains_on_one_path_stop_the_start_up(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    settings = service_settings(tmp_path, fake_llm[1])
    twin = yaml.safe_load((TEMPLATES_DIR / "slogan.yaml").read_text())
    twin["serve"] = {"path": "/critique"}
    (settings.templates_dir / "slogan.yaml").write_text(yaml.safe_dump(twin))
    with pytest.raises(ValueError, match="'/critique'"):
        create_app(settings)


def test_the_service_serves_the_shipped_catalog(service: Service) -> None:
    paths = {getattr(route, "path", None) for route in service.app.routes}
    for chain in ("example", "critique", "extract", "tools"):
        assert f"/{chain}/invoke" in paths and f"/{chain}/stream_events" in paths
