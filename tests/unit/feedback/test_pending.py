"""Scores waiting for their run's log: durable, last score per name wins, old ones expire."""

from __future__ import annotations

import time
from pathlib import Path

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
    assert PendingFeedback(path, max_age_seconds=3600).run_ids() == []


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
    assert PendingFeedback(path, max_age_seconds=60).run_ids() == ["new"]


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(b'{"op": "add", "run_id": "r", "name": "n", "score": 1, "comment": null, '
                     b'"at": 9999999999}\n{"op": "add", "run_')
    assert PendingFeedback(path, max_age_seconds=60).run_ids() == ["r"]
