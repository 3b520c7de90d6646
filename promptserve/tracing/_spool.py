"""Disk spool of logs that could not be delivered in time: append-only JSON-lines files.

Layout of the spool directory:
- `NNNNNNNN.jsonl`: records `{"k": idempotency key, "b": log body}` in arrival order. Each
  process start writes a fresh segment, so a line torn by a crash is never appended to.
- `NNNNNNNN.ack`: keys of that segment's records that are done (delivered or refused for
  good), append-only too. A segment whose records are all done is deleted with its ack file.
- `landed.jsonl`: `{"run": root run id, "id": request id}` for logs the spool delivered, so
  feedback given by run id can still find its request after a restart (bounded, compacted).

Every method does blocking file I/O: the delivery calls them from one dedicated thread, which
also serialises them (no locks needed). Counts are returned to the caller rather than read
from another thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptserve.jsonl import append_durably, read_objects

__all__ = ["Spool", "SpoolCounts", "SpoolRecord"]

logger = logging.getLogger(__name__)

_LANDED_KEEP = 100_000


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One spooled log."""

    key: str
    body: dict[str, Any]
    segment: int


@dataclass(frozen=True, slots=True)
class SpoolCounts:
    """Records not yet done and bytes on disk, as of the last spool operation."""

    pending: int
    size: int


@dataclass(slots=True)
class _Segment:
    number: int
    undone: set[str] = field(default_factory=set)
    size: int = 0


class Spool:
    """Append-only segments of undelivered logs, read back in order by the drain."""

    def __init__(self, directory: Path, *, segment_bytes: int = 8 * 1024 * 1024) -> None:
        """Open (creating) `directory` and recover what earlier processes left undone."""
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._segments: OrderedDict[int, _Segment] = OrderedDict()
        for path in sorted(directory.glob("*.jsonl")):
            if path.stem.isdigit():
                self._recover(int(path.stem))
        self._active = self._new_segment()
        self._cursor: tuple[int, int] = (0, 0)  # (segment number, byte offset)
        self.landed: OrderedDict[str, int] = self._load_landed()

    # -- paths -----------------------------------------------------------------------------

    def _data(self, number: int) -> Path:
        return self._dir / f"{number:08d}.jsonl"

    def _acks(self, number: int) -> Path:
        return self._dir / f"{number:08d}.ack"

    # -- recovery --------------------------------------------------------------------------

    def _recover(self, number: int) -> None:
        segment = _Segment(number)
        for record in self._read(number, 0)[0]:
            segment.undone.add(record.key)
        for line in read_objects(self._acks(number)):
            segment.undone.discard(line.get("k", ""))
        if segment.undone:
            segment.size = self._data(number).stat().st_size
            self._segments[number] = segment
            logger.info("spool: %d undelivered logs in segment %d", len(segment.undone), number)
        else:
            self._delete(number)

    def _new_segment(self) -> int:
        number = max(self._segments, default=0) + 1
        self._segments[number] = _Segment(number)
        return number

    def _delete(self, number: int) -> None:
        for path in (self._data(number), self._acks(number)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._segments.pop(number, None)

    # -- writing ---------------------------------------------------------------------------

    def append(self, records: list[tuple[str, dict[str, Any]]]) -> SpoolCounts:
        """Append `(key, body)` records durably (one fsync for the batch)."""
        if records:
            segment = self._segments[self._active]
            lines = b"".join(
                json.dumps({"k": key, "b": body}, default=str).encode() + b"\n"
                for key, body in records
            )
            append_durably(self._data(self._active), lines)
            segment.size += len(lines)
            segment.undone.update(key for key, _ in records)
            if segment.size >= self._segment_bytes:
                self._active = self._new_segment()
        return self.counts()

    def ack(
        self, done: list[tuple[SpoolRecord, int | None]], landed: list[tuple[str, int]]
    ) -> SpoolCounts:
        """Mark records done (with their request id, None if refused) and note landings."""
        by_segment: dict[int, list[bytes]] = {}
        for record, request_id in done:
            line = json.dumps({"k": record.key, "id": request_id}).encode() + b"\n"
            by_segment.setdefault(record.segment, []).append(line)
        for number, lines in by_segment.items():
            segment = self._segments.get(number)
            if segment is None:
                continue
            append_durably(self._acks(number), b"".join(lines))
            segment.undone.difference_update(r.key for r, _ in done if r.segment == number)
        self._note_landed(landed)
        self._collect()
        return self.counts()

    def _collect(self) -> None:
        """Delete fully done segments; the active one too, once read to its end."""
        for number, segment in list(self._segments.items()):
            if segment.undone:
                continue
            if number == self._active:
                if segment.size == 0 or self._cursor != (number, segment.size):
                    continue
                self._delete(number)
                self._active = self._new_segment()
                self._cursor = (self._active, 0)
            else:
                self._delete(number)

    # -- reading ---------------------------------------------------------------------------

    def next_batch(self, limit: int) -> list[SpoolRecord]:
        """Up to `limit` undone records after the cursor, in spool order; moves the cursor."""
        found: list[SpoolRecord] = []
        for number, segment in self._segments.items():
            if number < self._cursor[0]:
                continue
            offset = self._cursor[1] if number == self._cursor[0] else 0
            if offset >= segment.size:
                self._cursor = (number, segment.size)
                continue
            records, end = self._read(number, offset, limit - len(found), segment.undone)
            found.extend(records)
            self._cursor = (number, end)
            if len(found) >= limit:
                break
        self._collect()
        return found

    def rewind(self) -> None:
        """Read again from the oldest segment (records not acked come back)."""
        self._cursor = (0, 0)

    def _read(
        self, number: int, offset: int, limit: int | None = None, keep: set[str] | None = None
    ) -> tuple[list[SpoolRecord], int]:
        records: list[SpoolRecord] = []
        try:
            handle = self._data(number).open("rb")
        except FileNotFoundError:
            return records, offset
        with handle:
            handle.seek(offset)
            position = offset
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # torn by a crash mid-write: the record never got its fsync
                position += len(raw)
                try:
                    line = json.loads(raw)
                    record = SpoolRecord(str(line["k"]), dict(line["b"]), number)
                except (ValueError, KeyError, TypeError):
                    logger.warning("spool: skipping an unreadable line in segment %d", number)
                    continue
                if keep is None or record.key in keep:
                    records.append(record)
                    if limit is not None and len(records) >= limit:
                        break
        return records, position

    def counts(self) -> SpoolCounts:
        """Pending records and bytes on disk."""
        pending = sum(len(s.undone) for s in self._segments.values())
        return SpoolCounts(pending, sum(s.size for s in self._segments.values()))

    # -- landed index ----------------------------------------------------------------------

    def _load_landed(self) -> OrderedDict[str, int]:
        landed: OrderedDict[str, int] = OrderedDict()
        count = 0
        for line in read_objects(self._dir / "landed.jsonl"):
            count += 1
            if isinstance(line.get("run"), str) and isinstance(line.get("id"), int):
                landed[line["run"]] = line["id"]
                landed.move_to_end(line["run"])
                if len(landed) > _LANDED_KEEP:
                    landed.popitem(last=False)
        if count > 2 * _LANDED_KEEP:
            body = b"".join(
                json.dumps({"run": r, "id": i}).encode() + b"\n" for r, i in landed.items()
            )
            tmp = self._dir / "landed.jsonl.tmp"
            tmp.write_bytes(body)
            os.replace(tmp, self._dir / "landed.jsonl")
        return landed

    def _note_landed(self, landed: list[tuple[str, int]]) -> None:
        if not landed:
            return
        lines = b"".join(json.dumps({"run": r, "id": i}).encode() + b"\n" for r, i in landed)
        # No fsync: losing the tail only costs a run-id lookup after a power cut.
        with (self._dir / "landed.jsonl").open("ab") as handle:
            handle.write(lines)
