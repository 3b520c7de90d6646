"""Secrets kept in the data directory: generated once, read on every later start."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

__all__ = ["load_or_create_secret"]


def load_or_create_secret(path: Path, *, prefix: str = "") -> tuple[str, bool]:
    """Return the secret stored at `path`, creating it (mode 0600) when missing.

    The second value is True when the secret was created by this call, so the
    caller can print it once. Creation uses O_EXCL so that replicas starting
    together on one data directory agree on a single secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = prefix + secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path), False
    with os.fdopen(fd, "w") as handle:
        handle.write(candidate + "\n")
    return candidate, True


def _read_when_written(path: Path) -> str:
    # Another process may have created the file but not yet written it.
    for _ in range(200):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.01)
    raise RuntimeError(f"secret file {path} is empty")
