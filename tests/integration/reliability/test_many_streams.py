"""1,000 concurrent streams against one service process: no errors, each ends with its ids."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.service.conftest import write_templates
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, serve_in_process

STREAMS = 1000


@pytest.mark.timeout(240)
async def test_a_thousand_concurrent_streams_each_end_with_the_id_event(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"OPENAI_BASE_URL": f"{fake_llm[1]}/v1", "OPENAI_API_KEY": "sk-test",
           "PROMPTLAYER_API_KEY": "streams-backend-key",
           "PROMPTSERVE_DATA_DIR": str(tmp_path / "data"),
           "PROMPTSERVE_TEMPLATES_DIR": str(write_templates(tmp_path / "templates")),
           "HOST": "127.0.0.1", "PORT": str(port)}
    with serve_in_process(["serve"], env=env, health_url=f"{url}/readyz", cwd=tmp_path):
        limits = httpx.Limits(max_connections=STREAMS + 50, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            start = asyncio.Event()

            async def one(i: int) -> str:
                await start.wait()
                async with client.stream("POST", f"{url}/example/stream",
                                         json={"input": {"product": f"thing {i}"}}) as response:
                    assert response.status_code == 200
                    return (await response.aread()).decode()

            tasks = [asyncio.create_task(one(i)) for i in range(STREAMS)]
            started = time.monotonic()
            start.set()
            bodies = await asyncio.gather(*tasks, return_exceptions=True)
            elapsed = time.monotonic() - started
    errors = [b for b in bodies if isinstance(b, BaseException)]
    assert errors == []
    with_ids = 0
    for body in bodies:
        assert isinstance(body, str)
        # SSE comments (sse-starlette's `: ping` every 15 s, even right after `end`) are
        # not events; every client skips them.
        events = [e for e in body.split("\r\n\r\n") if e.strip() and not e.startswith(":")]
        assert not any(e.startswith("event: error") for e in events), body
        assert events[-1].startswith("event: end"), body
        assert events[-2].startswith("event: metadata"), body
        ids = json.loads(events[-2].split("data: ", 1)[1])
        assert ids["run_id"] and ids["feedback_token"]
        with_ids += ids["promptlayer_request_id"] is not None
    print(f"STREAMS FIGURES streams={STREAMS} seconds={elapsed:.1f} with_request_id={with_ids}")
