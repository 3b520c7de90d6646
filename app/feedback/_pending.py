"""Feedback that could not be applied yet, kept on disk until it can.

Two reasons a score waits: it was given by run id before that run's log landed (no request id
yet), or PromptLayer did not take it in time (an outage: 5xx, timeouts, refused connections).
Each score waits under a key: its run id when given by run id, else `request:<request id>`;
the (key, name) pair keeps the last score.

One append-only JSON-lines file: `{"op": "add", "run_id", "request_id", "name", "score",
"comment", "at"}` records a score (either id may be null, not both), `{"op": "done", "key"}`
says every score under that key was applied. The file is rewritten without finished keys at
start-up. Scores older than the token lifetime are dropped then (and by `expire`): a token
for them has expired, and their log is not coming. Files written before request ids were kept
(no `request_id`; `done` lines naming a `run_id`) read the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from promptserve.jsonl import append_durably, read_objects

__all__ = ["PendingFeedback", "PendingScore"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingScore:
    """One score waiting to be applied: by run id, by request id, or both once known."""

    run_id: str | None
    name: str
    score: int
    comment: str | None
    at: float
    request_id: int | None = None

    def __post_init__(self) -> None:
        if self.run_id is None and self.request_id is None:
            raise ValueError("a pending score needs a run id or a request id")

    @property
    def key(self) -> str:
        """What the score waits under: its run id, else `request:<request id>`."""
        return self.run_id if self.run_id is not None else request_key(self.request_id)


def request_key(request_id: int | None) -> str:
    """The key of scores given by request id."""
    return f"request:{request_id}"


class PendingFeedback:
    """Waiting scores, durable across restarts; (key, name) keeps the last score."""

    def __init__(self, path: Path, *, max_age_seconds: float) -> None:
        """Load `path` (blocking: call once at start-up, off the event loop)."""
        self._path = path
        self._max_age = max_age_seconds
        self._lock = asyncio.Lock()
        self._scores: dict[str, dict[str, PendingScore]] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        oldest = time.time() - max_age_seconds
        for line in read_objects(path):
            if line.get("op") == "done":
                self._scores.pop(str(line.get("key", line.get("run_id", ""))), None)
            elif line.get("op") == "add":
                score = _parse(line)
                if score is not None and score.at >= oldest:
                    self._scores.setdefault(score.key, {})[score.name] = score
        self._rewrite()

    def _rewrite(self) -> None:
        lines = [_add_line(s) for waiting in self._scores.values() for s in waiting.values()]
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(lines))
        os.replace(tmp, self._path)

    def __contains__(self, key: object) -> bool:
        """True when scores wait under `key` (a run id, or `request:<id>`)."""
        return key in self._scores

    def waiting_keys(self) -> list[str]:
        """The keys scores wait under."""
        return list(self._scores)

    def scores(self, key: str) -> list[PendingScore]:
        """The scores waiting under `key`."""
        return list(self._scores.get(key, {}).values())

    async def add(self, score: PendingScore) -> None:
        """Keep `score` durably (fsync'd before this returns)."""
        async with self._lock:
            await asyncio.to_thread(append_durably, self._path, _add_line(score))
            self._scores.setdefault(score.key, {})[score.name] = score

    async def resolve(self, key: str, request_id: int) -> None:
        """Note durably that the scores under run id `key` belong to `request_id`.

        For scores kept through an outage after their log landed: after a restart the run's
        request id may no longer be known in memory.
        """
        async with self._lock:
            waiting = self._scores.get(key, {})
            known = [
                dataclasses.replace(score, request_id=request_id)
                for score in waiting.values()
                if score.request_id != request_id
            ]
            if not known:
                return
            data = b"".join(_add_line(score) for score in known)
            await asyncio.to_thread(append_durably, self._path, data)
            for score in known:
                waiting[score.name] = score

    async def done(self, key: str, applied: list[PendingScore]) -> None:
        """Forget the `applied` scores under `key` (a newer score for the same name stays)."""
        async with self._lock:
            waiting = self._scores.get(key, {})
            for score in applied:
                if waiting.get(score.name) is score:
                    del waiting[score.name]
            if not waiting and self._scores.pop(key, None) is not None:
                line = json.dumps({"op": "done", "key": key}).encode() + b"\n"
                await asyncio.to_thread(append_durably, self._path, line)

    async def expire(self, now: float | None = None) -> int:
        """Drop the scores older than the token lifetime; how many were dropped."""
        oldest = (time.time() if now is None else now) - self._max_age
        dropped = 0
        for key in self.waiting_keys():
            old = [score for score in self.scores(key) if score.at < oldest]
            if old:
                dropped += len(old)
                await self.done(key, old)
        if dropped:
            logger.warning("feedback: %d scores never applied, dropped after the token lifetime",
                           dropped)
        return dropped


def _parse(line: dict[str, Any]) -> PendingScore | None:
    run_id, request_id, comment = line.get("run_id"), line.get("request_id"), line.get("comment")
    try:
        return PendingScore(
            None if run_id is None else str(run_id),
            str(line["name"]),
            int(line["score"]),
            None if comment is None else str(comment),
            float(line["at"]),
            None if request_id is None else int(request_id),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _add_line(score: PendingScore) -> bytes:
    return json.dumps({"op": "add", **asdict(score)}).encode() + b"\n"
