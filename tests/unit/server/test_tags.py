"""Route tags: which route, endpoint and chain served a logged call (format in the README)."""

from __future__ import annotations

from promptserve.server import CHAIN_ENDPOINTS, route_tags


def test_route_tags_have_the_documented_format() -> None:
    assert route_tags(route="/example", endpoint="stream", chain="example") == [
        "route:/example",
        "endpoint:stream",
        "chain:example",
    ]
    assert route_tags(route="/n/m", endpoint="invoke", chain="n_m") == [
        "route:/n/m", "endpoint:invoke", "chain:n_m"
    ]


def test_the_endpoints_that_run_the_chain() -> None:
    assert CHAIN_ENDPOINTS == ("invoke", "batch", "stream", "stream_log", "stream_events")
