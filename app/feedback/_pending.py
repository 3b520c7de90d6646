"""Feedback given by run id before that run's log landed: kept on disk until it can apply.

One append-only JSON-lines file: `{"op": "add", "run_id", "name", "score", "comment", "at"}`
records a score, `{"op": "done", "run_id"}` says every score of that run was applied. The
file is rewritten without finished runs at start-up. Scores older than the token lifetime are
dropped then too: a token for them has expired, and their log is not coming.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from promptserve.jsonl import append_durably, read_objects

__all__ = ["PendingFeedback", "PendingScore"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingScore:
    """One score waiting for its run's request id."""

    run_id: str
    name: str
    score: int
    comment: str | None
    at: float


class PendingFeedback:
    """Scores by run id, durable across restarts; (run, name) keeps the last score."""

    def __init__(self, path: Path, *, max_age_seconds: float) -> None:
        """Load `path` (blocking: call once at start-up, off the event loop)."""
        self._path = path
        self._lock = asyncio.Lock()
        self._scores: dict[str, dict[str, PendingScore]] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        oldest = time.time() - max_age_seconds
        for line in read_objects(path):
            run_id = str(line.get("run_id", ""))
            if line.get("op") == "done":
                self._scores.pop(run_id, None)
            elif line.get("op") == "add":
                try:
                    score = PendingScore(
                        run_id,
                        str(line["name"]),
                        int(line["score"]),
                        line.get("comment"),
                        float(line["at"]),
                    )
                except (KeyError, TypeError, ValueError):
                    continue
                if score.at >= oldest:
                    self._scores.setdefault(run_id, {})[score.name] = score
        self._rewrite()

    def _rewrite(self) -> None:
        lines = [_add_line(s) for run in self._scores.values() for s in run.values()]
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(lines))
        os.replace(tmp, self._path)

    def __contains__(self, run_id: object) -> bool:
        """True when scores wait for `run_id`."""
        return run_id in self._scores

    def run_ids(self) -> list[str]:
        """Runs with scores waiting."""
        return list(self._scores)

    def scores(self, run_id: str) -> list[PendingScore]:
        """The scores waiting for `run_id`."""
        return list(self._scores.get(run_id, {}).values())

    async def add(self, score: PendingScore) -> None:
        """Keep `score` durably (fsync'd before this returns)."""
        async with self._lock:
            await asyncio.to_thread(append_durably, self._path, _add_line(score))
            self._scores.setdefault(score.run_id, {})[score.name] = score

    async def done(self, run_id: str, applied: list[PendingScore]) -> None:
        """Forget the `applied` scores of `run_id` (a newer score for the same name stays)."""
        async with self._lock:
            waiting = self._scores.get(run_id, {})
            for score in applied:
                if waiting.get(score.name) is score:
                    del waiting[score.name]
            if not waiting:
                self._scores.pop(run_id, None)
                line = json.dumps({"op": "done", "run_id": run_id}).encode() + b"\n"
                await asyncio.to_thread(append_durably, self._path, line)


def _add_line(score: PendingScore) -> bytes:
    return json.dumps({"op": "add", **asdict(score)}).encode() + b"\n"
