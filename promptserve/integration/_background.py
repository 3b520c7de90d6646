"""Log delivery for plain scripts and notebooks: its own event loop on a daemon thread.

LangChain runs an async handler called from sync code on a throwaway loop and waits for
what it started there; delivery's workers must not live on such a loop (a sync
`ChatOpenAI.invoke` would wait for them forever), nor on the caller's loop, which a script
closes when it likes. Here they live on a loop of their own, started at the first log, and
the interpreter's exit flushes it (bounded by `exit_flush_seconds`) and spools what is left
for the next run, so a script that ends without a word loses no log and no id callback.
Handlers submit through `logs`, which gathers a script's consecutive logs into one post
(`_linger`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from promptserve.integration._linger import LINGER_SECONDS, LingeringDelivery
from promptserve.settings import ClientSettings
from promptserve.tracing import LogDelivery

__all__ = ["BackgroundDelivery", "default_delivery"]

logger = logging.getLogger(__name__)


class BackgroundDelivery:
    """A `LogDelivery` served by a loop on a daemon thread, closed at interpreter exit."""

    def __init__(self, settings: ClientSettings, *, linger: float = LINGER_SECONDS) -> None:
        """Deliver to the PromptLayer `settings` name, each log gathered with those that
        follow it within `linger` s; start the thread now."""
        if settings.promptlayer_api_key is None:
            raise ValueError(
                "PROMPTLAYER_API_KEY is not set: the handler needs a PromptLayer API key "
                "(and PROMPTLAYER_BASE_URL for a PromptLayer other than the hosted one)"
            )
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        # Id callbacks run on a thread of their own, never on the delivery loop (they may
        # block: the SDK's sync track calls do), and exit waits for them. Not an executor:
        # concurrent.futures refuses new work once the interpreter starts exiting, which is
        # when the last logs land.
        self._callbacks: queue.Queue[tuple[Callable[[int], Any], int] | None] = queue.Queue()
        self._callback_thread = threading.Thread(target=self._run_callbacks,
                                                 name="promptserve-callbacks", daemon=True)
        self._callback_thread.start()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="promptserve-delivery",
                                        daemon=True)
        self._thread.start()
        self.delivery: LogDelivery = self.run(self._open(), timeout=30)
        self.logs = LingeringDelivery(self.delivery, self.loop, linger=linger)
        atexit.register(self.close)

    async def _open(self) -> LogDelivery:
        # Made on the delivery loop, which it then takes as its own (not the caller's).
        key = self.settings.promptlayer_api_key
        assert key is not None
        delivery = LogDelivery(base_url=self.settings.promptlayer_base_url,
                               api_key=key.get_secret_value(),
                               spool_dir=self.settings.client_spool_dir)
        await delivery.start()  # drains what an earlier run left in the spool
        return delivery

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Any, *, timeout: float | None = None) -> Any:
        """Run `coro` on the delivery loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def wait_for(self, future: asyncio.Future[int | None], timeout: float) -> int | None:
        """The id `future` (from `logs.submit`) yields within `timeout` s, else None; the
        gathered logs leave now (on the delivery loop)."""
        self.logs.hand_over()
        done, _ = await asyncio.wait([future], timeout=timeout)
        if not done or future.cancelled() or future.exception() is not None:
            return None
        return future.result()

    def call_back(self, callback: Callable[[int], Any], request_id: int) -> None:
        """Call `callback(request_id)` on the callback thread; exit waits for it."""
        self._callbacks.put((callback, request_id))

    def _run_callbacks(self) -> None:
        while (job := self._callbacks.get()) is not None:
            try:
                _guarded(*job)
            finally:
                self._callbacks.task_done()
        self._callbacks.task_done()

    def _callbacks_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._callbacks.all_tasks_done:
            while self._callbacks.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._callbacks.all_tasks_done.wait(left)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every log so far is delivered (or spooled) and every id callback ran;
        True if all finished within `timeout` s (default `exit_flush_seconds`)."""
        timeout = self.settings.exit_flush_seconds if timeout is None else timeout
        loop = asyncio.get_running_loop() if _in_a_loop() else None
        if loop is self.loop:
            raise RuntimeError("flush() cannot wait from the delivery loop itself")
        try:
            done = bool(self.run(self._flushed(timeout), timeout=timeout + 1))
        except concurrent.futures.TimeoutError:
            done = False
        return self._callbacks_done(timeout) and done

    async def _closing(self) -> None:
        self.logs.hand_over()  # what came during the flush
        await self.delivery.aclose(timeout=0.5)

    async def _flushed(self, timeout: float) -> bool:
        self.logs.hand_over()  # nothing waits out the linger
        return await self.delivery.flush(timeout)

    def close(self) -> None:
        """Flush (bounded), spool what is left, stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
        try:
            self.flush()
            self.logs.close()
            self.run(self._closing(), timeout=10)
        except Exception:
            logger.exception("promptserve: closing log delivery failed")
        finally:
            with self._lock:
                self._closed = True
            self._callbacks.put(None)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self.loop.close()
            with contextlib.suppress(Exception):
                atexit.unregister(self.close)


def _guarded(callback: Callable[[int], Any], request_id: int) -> None:
    try:
        callback(request_id)
    except Exception:
        logger.exception("promptserve: pl_id_callback failed for request %s", request_id)


def _in_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_DEFAULT: BackgroundDelivery | None = None
_DEFAULT_LOCK = threading.Lock()


def default_delivery() -> BackgroundDelivery:
    """The process's delivery for handlers given none, from `ClientSettings()`."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._closed:
            _DEFAULT = BackgroundDelivery(ClientSettings())
        return _DEFAULT
