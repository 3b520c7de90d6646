"""The disk spool on its own: order, acks, recovery after a restart, torn lines."""

from __future__ import annotations

from pathlib import Path

from promptserve.tracing._spool import Spool


def _bodies(n: int, start: int = 0) -> list[tuple[str, dict]]:
    return [(f"k{i}", {"n": i, "metadata": {}}) for i in range(start, start + n)]


def test_records_come_back_in_order_and_acked_ones_are_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.append(_bodies(5)).pending == 5
    first = spool.next_batch(3)
    assert [r.key for r in first] == ["k0", "k1", "k2"]
    counts = spool.ack([(r, 10 + i) for i, r in enumerate(first)], [("run", 12)])
    assert counts.pending == 2
    assert [r.key for r in spool.next_batch(10)] == ["k3", "k4"]
    assert spool.next_batch(10) == []


def test_rewind_returns_unacked_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_bodies(3))
    batch = spool.next_batch(3)
    spool.ack([(batch[1], 1)], [])
    spool.rewind()
    assert [r.key for r in spool.next_batch(10)] == ["k0", "k2"]


def test_fully_delivered_spool_leaves_no_records_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_bodies(4))
    batch = spool.next_batch(10)
    counts = spool.ack([(r, 1) for r in batch], [])
    assert counts.pending == 0
    assert spool.next_batch(10) == []
    assert counts.size == 0 or spool.counts().size == 0
    assert [p for p in tmp_path.glob("*.ack")] == []


def test_a_restart_recovers_what_was_not_acked(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_bodies(4))
    batch = spool.next_batch(2)
    spool.ack([(r, 1) for r in batch], [("root-1", 41)])
    reopened = Spool(tmp_path)
    assert reopened.counts().pending == 2
    assert [r.key for r in reopened.next_batch(10)] == ["k2", "k3"]
    assert reopened.landed == {"root-1": 41}
    reopened.append(_bodies(1, start=9))  # a new process appends to a new segment
    reopened.rewind()
    assert [r.key for r in reopened.next_batch(10)] == ["k2", "k3", "k9"]


def test_a_line_torn_by_a_crash_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_bodies(2))
    (segment,) = tmp_path.glob("*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b'{"k": "torn", "b": {"n"')  # killed mid-write, no newline
    reopened = Spool(tmp_path)
    assert reopened.counts().pending == 2
    assert [r.key for r in reopened.next_batch(10)] == ["k0", "k1"]


def test_segments_rotate_and_are_deleted_once_done(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    for i in range(6):
        spool.append(_bodies(1, start=i))
    assert len(list(tmp_path.glob("*.jsonl"))) > 1
    batch = spool.next_batch(100)
    assert [r.key for r in batch] == [f"k{i}" for i in range(6)]
    spool.ack([(r, 1) for r in batch], [])
    assert spool.counts().pending == 0
    assert len(list(tmp_path.glob("*.jsonl"))) <= 1
