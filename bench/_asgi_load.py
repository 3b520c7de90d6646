"""/example/invoke driven straight into an app's ASGI callable: no HTTP server, no sockets.

Shared by bench.instructions (counted under callgrind) and bench.inprocess (timed): the
same requests, `concurrency` in flight, each checked to answer 200.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench._backend import API_KEY

__all__ = ["IN_PROCESS_VARIANTS", "ASGIApp", "app_env", "drive"]

# What the in-process comparisons run by default: bare, what a handler alone costs it,
# ours without and with log delivery over HTTP.
IN_PROCESS_VARIANTS = ("bare", "bare-handler", "traced-nohttp", "traced")

_BODY = json.dumps({"input": {"product": "toasters"}}).encode()

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]],
                    Callable[[MutableMapping[str, Any]], Awaitable[None]]], Awaitable[None]]


def app_env(*, backend_url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a process that builds bench.apps variants in-process."""
    return {**os.environ, "PROMPTLAYER_BASE_URL": backend_url, "PROMPTLAYER_API_KEY": API_KEY,
            "PROMPTSERVE_DATA_DIR": str(data_dir), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "",
            "PROMPTSERVE_REFRESH_INTERVAL_SECONDS": "1000000",
            "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}


def _scope() -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/example/invoke", "raw_path": b"/example/invoke",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000), "state": {},
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BODY)).encode())],
    }


async def _invoke(app: ASGIApp) -> None:
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": _BODY, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: wait until cancelled
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope(), receive, send)
    if status != [200]:
        raise RuntimeError(f"/example/invoke answered {status}")


async def drive(app: ASGIApp, requests: int, concurrency: int) -> None:
    """`requests` invocations of /example/invoke, `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await _invoke(app)

    await asyncio.gather(*(one() for _ in range(requests)))
