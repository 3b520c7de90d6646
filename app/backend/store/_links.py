"""Prompt links of logged requests, remembered: no database read per log for a known prompt.

Every log names its prompt (template id or name, and usually a version number); resolving
it took a hop to the reader pool and three queries per log. Templates and versions are
append-only here (never renamed, deleted or edited), so a link found for an explicit version
number holds forever and can be remembered. Misses (a prompt published later must link) and
"latest" (moves with every publish) are never remembered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["LinkKey", "PromptLinks"]

# (template id, or None and the name when only the name was sent; version number)
LinkKey = tuple[int | None, str | None, int]


class PromptLinks:
    """A bounded, least-recently-used map of resolved links: key → (version id, blueprint)."""

    def __init__(self, capacity: int = 1024) -> None:
        """Remember at most `capacity` links."""
        self._capacity = capacity
        self._links: OrderedDict[LinkKey, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()  # readers resolve on the reader pool's threads

    def get(self, key: LinkKey) -> tuple[int, Any] | None:
        """The remembered link, or None."""
        with self._lock:
            found = self._links.get(key)
            if found is not None:
                self._links.move_to_end(key)
            return found

    def put(self, key: LinkKey, version_id: int, blueprint: Any) -> None:
        """Remember a link that resolved."""
        with self._lock:
            self._links[key] = (version_id, blueprint)
            self._links.move_to_end(key)
            while len(self._links) > self._capacity:
                self._links.popitem(last=False)

    def __len__(self) -> int:
        """How many links are remembered."""
        return len(self._links)
