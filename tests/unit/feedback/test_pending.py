"""Scores waiting for their run's log: durable, last score per name wins, old ones expire."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.feedback._pending import PendingFeedback, PendingScore


def _score(run: str, name: str, score: int, at: float | None = None) -> PendingScore:
    return PendingScore(run, name, score, None, time.time() if at is None else at)


async def test_scores_survive_a_restart_and_the_last_per_name_wins(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=3600)
    await pending.add(_score("r1", "default", 10))
    await pending.add(_score("r1", "default", 90))
    await pending.add(_score("r1", "style", 5))
    reloaded = PendingFeedback(path, max_age_seconds=3600)
    assert "r1" in reloaded
    assert sorted((s.name, s.score) for s in reloaded.scores("r1")) == [
        ("default", 90), ("style", 5)]


async def test_done_forgets_applied_scores_durably(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=3600)
    await pending.add(_score("r1", "default", 10))
    await pending.done("r1", pending.scores("r1"))
    assert "r1" not in pending
    assert PendingFeedback(path, max_age_seconds=3600).waiting_keys() == []


async def test_a_newer_score_given_while_applying_is_kept(tmp_path: Path) -> None:
    pending = PendingFeedback(tmp_path / "f.jsonl", max_age_seconds=3600)
    await pending.add(_score("r1", "default", 10))
    applying = pending.scores("r1")
    await pending.add(_score("r1", "default", 20))
    await pending.done("r1", applying)
    assert [s.score for s in pending.scores("r1")] == [20]


async def test_scores_older_than_a_token_are_dropped_at_start(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=60)
    await pending.add(_score("old", "default", 1, at=time.time() - 120))
    await pending.add(_score("new", "default", 2))
    assert PendingFeedback(path, max_age_seconds=60).waiting_keys() == ["new"]


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(b'{"op": "add", "run_id": "r", "name": "n", "score": 1, "comment": null, '
                     b'"at": 9999999999}\n{"op": "add", "run_')
    assert PendingFeedback(path, max_age_seconds=60).waiting_keys() == ["r"]


def _by_request(request_id: int, name: str, score: int, at: float | None = None) -> PendingScore:
    return PendingScore(None, name, score, "a comment", time.time() if at is None else at,
                        request_id)


def test_a_score_needs_a_run_id_or_a_request_id() -> None:
    with pytest.raises(ValueError, match="run id or a request id"):
        PendingScore(None, "default", 1, None, time.time())


async def test_scores_by_request_id_survive_a_restart_under_their_own_key(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=3600)
    await pending.add(_by_request(7, "default", 10))
    await pending.add(_by_request(7, "default", 40))
    await pending.add(_score("r1", "default", 20))
    reloaded = PendingFeedback(path, max_age_seconds=3600)
    assert sorted(reloaded.waiting_keys()) == ["r1", "request:7"]
    [kept] = reloaded.scores("request:7")
    assert (kept.request_id, kept.run_id, kept.score, kept.comment) == (7, None, 40, "a comment")


async def test_done_for_a_request_key_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=3600)
    await pending.add(_by_request(7, "default", 10))
    await pending.done("request:7", pending.scores("request:7"))
    assert "request:7" not in pending
    assert PendingFeedback(path, max_age_seconds=3600).waiting_keys() == []


async def test_resolve_keeps_a_runs_request_id_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=3600)
    await pending.add(_score("r1", "default", 10))
    await pending.add(_score("r1", "style", 5))
    await pending.resolve("r1", 42)
    reloaded = PendingFeedback(path, max_age_seconds=3600)
    assert sorted((s.name, s.score, s.request_id) for s in reloaded.scores("r1")) == [
        ("default", 10, 42), ("style", 5, 42)]


async def test_resolve_does_not_bring_back_an_older_score(tmp_path: Path) -> None:
    pending = PendingFeedback(tmp_path / "f.jsonl", max_age_seconds=3600)
    await pending.add(_score("r1", "default", 10))
    await pending.add(_score("r1", "default", 20))
    await pending.resolve("r1", 42)
    assert [(s.score, s.request_id) for s in pending.scores("r1")] == [(20, 42)]


async def test_expire_drops_scores_past_the_token_lifetime(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    pending = PendingFeedback(path, max_age_seconds=60)
    await pending.add(_by_request(7, "default", 1))
    await pending.add(_score("r1", "default", 2))
    assert await pending.expire(now=time.time() + 30) == 0
    assert await pending.expire(now=time.time() + 120) == 2
    assert pending.waiting_keys() == []
    assert PendingFeedback(path, max_age_seconds=60).waiting_keys() == []


def test_files_written_before_request_ids_were_kept_still_read(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(
        b'{"op": "add", "run_id": "a", "name": "n", "score": 1, "comment": null, '
        b'"at": 9999999999}\n'
        b'{"op": "add", "run_id": "b", "name": "n", "score": 2, "comment": "c", '
        b'"at": 9999999999}\n'
        b'{"op": "done", "run_id": "a"}\n'
    )
    pending = PendingFeedback(path, max_age_seconds=60)
    assert pending.waiting_keys() == ["b"]
    assert pending.scores("b")[0].request_id is None


def test_lines_without_any_id_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(b'{"op": "add", "name": "n", "score": 1, "comment": null, '
                     b'"at": 9999999999}\n')
    assert PendingFeedback(path, max_age_seconds=60).waiting_keys() == []
