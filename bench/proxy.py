"""A TCP proxy on 127.0.0.1 that delays every chunk, in both directions, and counts
connections: injected latency between the service and its PromptLayer backend."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

__all__ = ["DelayProxy", "delay_proxy"]


class DelayProxy:
    """Forwards to 127.0.0.1:`target_port`; each chunk arrives `delay` s after it was sent."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen on an ephemeral port (in a thread of its own)."""
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("proxy did not start")

    def stop(self) -> None:
        """Close the listener, cancel the connections' tasks, end the loop."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                                 return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            # Python 3.11's start_server logs a cancelled handler task as an error: end
            # normally on shutdown instead.
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not chunk:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, chunk))
        finally:
            queue.put_nowait((loop.time() + self.delay, b""))
            await sender


@contextlib.contextmanager
def delay_proxy(target_port: int, delay: float) -> Iterator[DelayProxy]:
    """A running DelayProxy, stopped afterwards."""
    proxy = DelayProxy(target_port, delay)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
