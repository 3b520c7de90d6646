"""The hot paths' JSON keeps what orjson refuses (promptserve/json_codec.py)."""

from __future__ import annotations

import json

from promptserve.json_codec import dumps, loads


def test_a_chain_output_beyond_orjson_still_round_trips() -> None:
    raw = json.dumps({"output": 2**70, "metadata": {"run_id": "r"}}).encode()
    payload = loads(raw)
    assert payload["output"] == 2**70
    assert json.loads(dumps(payload)) == {"output": 2**70, "metadata": {"run_id": "r"}}


def test_plain_payloads_are_compact_utf8() -> None:
    assert dumps({"a": "café", "b": [1, 2]}) == '{"a":"café","b":[1,2]}'.encode()
