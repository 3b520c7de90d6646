from __future__ import annotations

from promptserve.server._tags import endpoint_of, route_tags


def test_endpoint_is_the_last_path_segment() -> None:
    assert endpoint_of("/example/invoke") == "invoke"
    assert endpoint_of("/nested/chain/stream_log/") == "stream_log"


def test_route_tags_have_the_documented_format() -> None:
    assert route_tags(
        route="/example",
        endpoint="stream",
        chain="example",
        prompt_name="example",
        prompt_version=3,
        prompt_label="prod",
    ) == [
        "route:/example",
        "endpoint:stream",
        "chain:example",
        "prompt:example",
        "prompt_version:3",
        "prompt_label:prod",
    ]
    tags = route_tags(
        route="/x",
        endpoint="invoke",
        chain="x",
        prompt_name="p",
        prompt_version=1,
        prompt_label=None,
    )
    assert not any(tag.startswith("prompt_label:") for tag in tags)
