"""The backend mounted under /promptlayer in a host app that runs its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from promptlayer import PromptLayer

from app.backend import create_backend_app
from app.config import Settings
from tests.utils.servers import serve_in_thread


def test_mounted_under_prefix(tmp_path: Path) -> None:
    backend = create_backend_app(
        Settings(_env_file=None, data_dir=tmp_path / "data", database_url=None), api_key="k"
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with backend.router.lifespan_context(backend):
            yield

    host = FastAPI(lifespan=lifespan)
    host.mount("/promptlayer", backend)
    with serve_in_thread(host) as url:
        pl = PromptLayer(api_key="k", base_url=f"{url}/promptlayer")
        chat = {
            "type": "chat",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "{a}"}]}],
        }
        published = pl.templates.publish({"prompt_name": "x/y", "prompt_template": chat})
        assert published["version_number"] == 1
        assert (
            pl.templates.get("x/y", {"input_variables": {"a": "b"}})["prompt_template"]["messages"][
                0
            ]["content"][0]["text"]
            == "b"
        )
    # SQLite file in the data directory (created on start).
    assert (tmp_path / "data" / "promptserve.db").exists()
