"""Bench-only delivery variants, to size what would close the throughput gap.

Not product code: they patch `LogDelivery` inside a benchmark server process only.
- `NoHttpDelivery`: every log "lands" at once with a fake id, no HTTP at all: the cost of
  our layer minus delivery (tracer callbacks, id rewrite, LangChain callback dispatch).
- `AiohttpDelivery`: the same POST /log-request over one aiohttp session, no retries, one
  post per log even when logs queue up together (`LogDelivery` batches those). It
  sized the switch from httpx to aiohttp; `Poster` has since moved on to our own HttpPool
  (branch `transport`), so it now shows what aiohttp would cost in its place.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp

from promptserve.tracing import LogDelivery
from promptserve.tracing._delivery import _LogItem

__all__ = ["AiohttpDelivery", "NoHttpDelivery"]

_ids = itertools.count(1)


class NoHttpDelivery(LogDelivery):
    """Answers every log with a fake id, without sending it."""

    async def _deliver(self, items: list[_LogItem]) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_result(next(_ids))


class AiohttpDelivery(LogDelivery):
    """POSTs each log over a pooled aiohttp session."""

    def __init__(self, *, base_url: str, api_key: str, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, api_key=api_key, **kwargs)
        self._url = base_url.rstrip("/") + "/log-request"
        self._headers = {"X-API-KEY": api_key, "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    async def _deliver(self, items: list[_LogItem]) -> None:
        await asyncio.gather(*(self._post(item) for item in items))

    async def _post(self, item: _LogItem) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        request_id: int | None = None
        try:
            data = json.dumps(item.body, default=str).encode()
            headers = {"Idempotency-Key": item.idempotency_key}
            async with self._session.post(self._url, data=data, headers=headers) as response:
                if response.status < 300:
                    request_id = int(json.loads(await response.read())["id"])
        finally:
            if not item.future.done():
                item.future.set_result(request_id)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Close the aiohttp session too."""
        await super().aclose(timeout)
        if self._session is not None:
            await self._session.close()
