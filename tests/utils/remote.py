"""Stock RemoteRunnable for tests, closed deterministically (client.detach_finalizer)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langserve import RemoteRunnable

from promptserve.client import detach_finalizer


@contextlib.contextmanager
def remote_runnable(url: str) -> Iterator[RemoteRunnable[Any, Any]]:
    """A RemoteRunnable used from sync code."""
    remote: RemoteRunnable[Any, Any] = RemoteRunnable(url)
    try:
        yield remote
    finally:
        remote.sync_client.close()
        detach_finalizer(remote)


@contextlib.asynccontextmanager
async def aremote_runnable(url: str) -> AsyncIterator[RemoteRunnable[Any, Any]]:
    """A RemoteRunnable used from async code (closed in the loop that used it)."""
    remote: RemoteRunnable[Any, Any] = RemoteRunnable(url)
    try:
        yield remote
    finally:
        remote.sync_client.close()
        await remote.async_client.aclose()
        detach_finalizer(remote)
