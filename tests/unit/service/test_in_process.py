"""Logs handed straight to the embedded backend: same checks and store as /log-request."""

from __future__ import annotations

from pathlib import Path

from app.backend import create_backend_app
from app.backend.store.requests import get_request
from app.config import Settings
from app.service._in_process import in_process_handlers
from promptserve.tracing import BATCH_PATH

BODY = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "input": {
        "type": "chat",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    },
    "output": {
        "type": "chat",
        "messages": [{"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
    },
    "request_start_time": 1700000000.0,
    "request_end_time": 1700000001.5,
    "tags": ["route:/example"],
    "metadata": {"_langchain_run_id": "r1"},
    "score": 0,
}


async def test_log_request_is_stored_in_process_once_per_key(tmp_path: Path) -> None:
    backend = create_backend_app(Settings(_env_file=None, data_dir=tmp_path), api_key="k")
    async with backend.router.lifespan_context(backend):
        handler = in_process_handlers(backend)["/log-request"]
        first = await handler(BODY, {"Idempotency-Key": "run-1"})
        again = await handler(BODY, {"Idempotency-Key": "run-1"})
        assert first.status == 201 and first.body["id"] == again.body["id"]
        stored = backend.state.store.read_sync(
            lambda c: get_request(c, request_id=first.body["id"])
        )
        assert stored["tags"] == ["route:/example"]
        assert stored["metadata"] == {"_langchain_run_id": "r1"}
        assert stored["scores"] == {}  # the SDK's default score 0 is not a score


async def test_what_http_would_refuse_is_refused_and_not_retried(tmp_path: Path) -> None:
    backend = create_backend_app(Settings(_env_file=None, data_dir=tmp_path), api_key="k")
    async with backend.router.lifespan_context(backend):
        handler = in_process_handlers(backend)["/log-request"]
        for bad in (
            {**BODY, "model": None},
            {**BODY, "request_start_time": "yesterday"},
            {**BODY, "model": "nul\x00"},
        ):
            result = await handler(bad, {})
            assert result.status == 400 and not result.ok and not result.transient


async def test_what_the_hosted_schema_lacks_is_stored_without(tmp_path: Path) -> None:
    backend = create_backend_app(Settings(_env_file=None, data_dir=tmp_path), api_key="k")
    async with backend.router.lifespan_context(backend):
        handler = in_process_handlers(backend)["/log-request"]
        result = await handler({**BODY, "metadata": {"k": 1, "kept": "yes"}}, {})
        assert result.status == 201 and result.ok
        stored = backend.state.store.read_sync(
            lambda c: get_request(c, request_id=result.body["id"])
        )
        assert stored["metadata"]["kept"] == "yes" and "k" not in stored["metadata"]
        assert "metadata.k" in stored["metadata"]["promptserve_stored_without"]


async def test_odd_values_are_encoded_as_over_http(tmp_path: Path) -> None:
    # The poster sends NaN as null (promptserve/json_codec.py); the in-process path must store the
    # same body rather than refuse what HTTP delivery would have landed.
    backend = create_backend_app(Settings(_env_file=None, data_dir=tmp_path), api_key="k")
    async with backend.router.lifespan_context(backend):
        handler = in_process_handlers(backend)["/log-request"]
        odd = {**BODY, "parameters": {"temperature": float("nan"), "seed": 2**70}}
        result = await handler(odd, {"Idempotency-Key": "odd"})
        assert result.status == 201
        stored = backend.state.store.read_sync(
            lambda c: get_request(c, request_id=result.body["id"])
        )
        assert stored["parameters"] == {"temperature": None, "seed": 2**70}


async def test_a_batch_is_answered_log_by_log_in_process(tmp_path: Path) -> None:
    backend = create_backend_app(Settings(_env_file=None, data_dir=tmp_path), api_key="k")
    async with backend.router.lifespan_context(backend):
        handler = in_process_handlers(backend)[BATCH_PATH]
        entries = [{"idempotency_key": "run-1", "body": BODY},
                   {"idempotency_key": "run-2", "body": {**BODY, "model": None}},
                   {"idempotency_key": "run-1", "body": BODY},
                   {"idempotency_key": "run-3", "body": {**BODY, "model": "nul\x00"}}]
        result = await handler({"requests": entries}, {})
        assert result.status == 200
        first, refused, again, nul = result.body["results"]
        assert first["status_code"] == again["status_code"] == 201
        assert first["body"]["id"] == again["body"]["id"]
        assert refused["status_code"] == 400 and "model" in refused["body"]["message"]
        assert nul["status_code"] == 400 and "NUL" in nul["body"]["message"]
        bad_envelope = await handler({"requests": "all of them"}, {})
        assert bad_envelope.status == 400 and not bad_envelope.transient
