"""A script's consecutive logs share posts to a real backend, and nothing waits out the
linger: not `flush`, not a wait for an id, not the exit of a script that never flushes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from promptserve.integration import BackgroundDelivery, PromptLayerCallbackHandler
from promptserve.settings import ClientSettings
from tests.integration.scripts.conftest import KEY, Project


def _background(project: Project, tmp_path: Path, linger: float) -> BackgroundDelivery:
    settings = ClientSettings(promptlayer_api_key=SecretStr(KEY),
                              promptlayer_base_url=project.backend.url,
                              client_spool_dir=tmp_path / "spool")
    return BackgroundDelivery(settings, linger=linger)


def _tagged(project: Project, tag: str) -> list[dict[str, Any]]:
    return project.backend.rows(
        "SELECT r.id FROM requests r JOIN request_tags t ON t.request_id = r.id "
        "WHERE t.tag = ? ORDER BY r.id", tag)


def test_consecutive_calls_share_posts_and_every_log_lands(
    project: Project, tmp_path: Path,
) -> None:
    background = _background(project, tmp_path, linger=0.2)
    ids: list[int] = []
    try:
        handler = PromptLayerCallbackHandler(pl_tags=["batched"], pl_id_callback=ids.append,
                                             delivery=background)
        model = FakeListChatModel(responses=["ok"], callbacks=[handler])
        for _ in range(40):
            model.invoke("hi")
        assert background.flush(10)
        stats = background.delivery.stats()
    finally:
        background.close()
    stored = [row["id"] for row in _tagged(project, "batched")]
    assert len(stored) == 40
    assert sorted(ids) == stored  # every id called back once
    assert stats["log_posts_total"] <= 5  # 40 fast calls: a post or two per tick
    assert stats["batched_logs_total"] >= 35


def test_flush_and_an_id_wait_do_not_wait_out_the_linger(
    project: Project, tmp_path: Path,
) -> None:
    background = _background(project, tmp_path, linger=60)
    try:
        handler = PromptLayerCallbackHandler(pl_tags=["patient"], delivery=background)
        handler.keep_request_ids = True
        model = FakeListChatModel(responses=["ok"], callbacks=[handler])
        result = model.generate([[HumanMessage("hi")]])
        started = time.monotonic()
        assert result.run is not None
        request_id = handler.request_id_of(result.run[0].run_id, timeout=10)
        assert request_id is not None and time.monotonic() - started < 5
        model.invoke("again")
        started = time.monotonic()
        assert background.flush(10) and time.monotonic() - started < 5
    finally:
        background.close()
    assert [row["id"] for row in _tagged(project, "patient")][0] == request_id
    assert len(_tagged(project, "patient")) == 2


LONG_LINGER = '''
from langchain_openai import ChatOpenAI
from promptserve import PromptLayerCallbackHandler
from promptserve.integration import BackgroundDelivery
from promptserve.settings import ClientSettings

handler = PromptLayerCallbackHandler(
    pl_tags=["lingering"], pl_id_callback=lambda i: print("pl request id: ", i, flush=True),
    delivery=BackgroundDelivery(ClientSettings(), linger=60),
)
ChatOpenAI(callbacks=[handler]).invoke("hello")
'''


def test_a_script_that_exits_at_once_still_delivers_and_calls_back(project: Project) -> None:
    done, seconds = project.run("lingering.py", LONG_LINGER)
    assert done.returncode == 0, done.stderr
    assert seconds < 20  # the exit flush hands the log over at once
    (row,) = _tagged(project, "lingering")
    assert f"pl request id:  {row['id']}" in done.stdout
