"""The access line: one JSON line per request, through the handler's fast path or logging."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.observability import JsonFormatter, ObservabilityMiddleware, log_config
from app.observability.logging import ACCESS_LOGGER, AccessLineHandler


@pytest.fixture
def access_stream() -> Iterator[io.StringIO]:
    """Logging as `promptserve serve` sets it up, the access handler writing to a buffer."""
    access = logging.getLogger(ACCESS_LOGGER)
    root = logging.getLogger()
    saved = (access.handlers[:], access.propagate, access.level, root.handlers[:], root.level)
    logging.config.dictConfig(log_config(level="INFO", fmt="json"))
    stream = io.StringIO()
    (handler,) = access.handlers
    assert isinstance(handler, AccessLineHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        access.handlers[:], access.propagate, access.level = saved[0], saved[1], saved[2]
        root.handlers[:], root.level = saved[3], saved[4]


@contextlib.contextmanager
def _alone() -> Iterator[None]:
    """The access handler as the logger's only one, as in `promptserve serve`.

    pytest attaches its capture handlers to non-propagating loggers too, which (rightly)
    sends the lines through ordinary records; here they are set aside, and `emit`, which
    only ordinary records reach, must not be called.
    """
    access = logging.getLogger(ACCESS_LOGGER)
    saved = access.handlers[:]
    (handler,) = [h for h in saved if isinstance(h, AccessLineHandler)]

    def no_record(record: logging.LogRecord) -> None:
        raise AssertionError("the access line went through a LogRecord")

    access.handlers[:] = [handler]
    handler.emit = no_record  # type: ignore[method-assign]
    try:
        yield
    finally:
        del handler.emit
        access.handlers[:] = saved


async def _get(path: str = "/hello", **headers: str) -> httpx.Response:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = ObservabilityMiddleware(Starlette(routes=[Route("/hello", hello)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def test_the_fast_path_writes_the_line_logging_would(access_stream: io.StringIO) -> None:
    with _alone():
        await _get(**{"X-Request-Id": "req-1"})
    (written,) = [json.loads(line) for line in access_stream.getvalue().splitlines()]
    record = logging.makeLogRecord({
        "name": ACCESS_LOGGER, "msg": "GET /hello 200", "levelname": "INFO",
        "request_id": "req-1", "method": "GET", "path": "/hello", "route": "/hello",
        "status": 200, "duration_ms": written["duration_ms"],
    })
    expected = json.loads(JsonFormatter().format(record))
    assert {k: v for k, v in written.items() if k != "ts"} == \
        {k: v for k, v in expected.items() if k != "ts"}
    assert written["ts"].endswith("Z") and written["ts"][:4].isdigit()


async def test_the_access_loggers_level_still_decides(access_stream: io.StringIO) -> None:
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    with _alone():
        await _get()
    assert access_stream.getvalue() == ""


async def test_a_handler_added_by_the_user_gets_ordinary_records(
    access_stream: io.StringIO,
) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger(ACCESS_LOGGER).addHandler(Keep())
    await _get(**{"X-Request-Id": "req-2"})
    assert [r.request_id for r in seen] == ["req-2"]  # type: ignore[attr-defined]
    assert json.loads(access_stream.getvalue())["request_id"] == "req-2"  # and still written


async def test_text_logs_take_the_ordinary_path() -> None:
    handler = AccessLineHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(message)s"))
    assert handler.write_fields("GET / 200", {"status": 200}) is False


async def test_a_filter_added_by_the_user_sees_every_record(access_stream: io.StringIO) -> None:
    class DropHello(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return getattr(record, "path", None) != "/hello"

    logging.getLogger(ACCESS_LOGGER).addFilter(drop := DropHello())
    try:
        await _get()  # pytest's handlers are attached: the ordinary path
        with _alone():
            await _get()  # the fast path would skip the filter
    finally:
        logging.getLogger(ACCESS_LOGGER).removeFilter(drop)
    assert access_stream.getvalue() == "", access_stream.getvalue()
