"""The bounded map of resolved prompt links (app/backend/store/_links.py)."""

from __future__ import annotations

from app.backend.store._links import PromptLinks


def test_keeps_the_most_recently_used_links_within_capacity() -> None:
    links = PromptLinks(capacity=2)
    links.put((1, None, 1), 10, {"v": 1})
    links.put((1, None, 2), 11, {"v": 2})
    assert links.get((1, None, 1)) == (10, {"v": 1})  # now the most recent
    links.put((None, "p", 1), 12, None)
    assert len(links) == 2
    assert links.get((1, None, 2)) is None  # the least recently used went
    assert links.get((1, None, 1)) == (10, {"v": 1})
    assert links.get((None, "p", 1)) == (12, None)
