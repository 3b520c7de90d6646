"""Append-only JSON-lines files that survive crashes (the delivery spool, pending feedback)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["append_durably", "read_objects"]


def append_durably(path: Path, data: bytes) -> None:
    """Append `data` to `path` and fsync it before returning."""
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def read_objects(path: Path) -> list[dict[str, Any]]:
    """Every JSON object line of `path` (none if it is missing); torn or foreign lines skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    found = []
    for line in raw.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(value, dict):
            found.append(value)
    return found
