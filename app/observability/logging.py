"""JSON log lines (one object per line) with the request id and run id of the request.

The CLI hands `log_config(...)` to uvicorn, which applies it in every worker process too.
The request id of the HTTP request being served travels in a context variable, so any log
line written while serving it carries it; other fields come from `extra={...}`.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Any

from app import json_codec

__all__ = ["JsonFormatter", "RequestIdFilter", "log_config", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "promptserve_request_id", default=None
)
"""The id of the HTTP request being served (X-Request-Id), set by the middleware."""

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class RequestIdFilter(logging.Filter):
    """Adds `request_id` from the context to records that lack one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, exception."""

    # (epoch second, its "%Y-%m-%dT%H:%M:%S"): an access line per request would otherwise
    # pay strftime each time. One tuple, so threads swap it whole.
    _second: tuple[int, str] = (-1, "")

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                           time.gmtime(second)))
        return f"{cached[1]}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            # Several workers write to one stream: which process said it.
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json_codec.dumps(entry).decode()


def log_config(*, level: str, fmt: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for promptserve and uvicorn: JSON or plain text."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers would print a second, unstructured copy.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            # Our middleware writes one structured access line per request instead.
            "uvicorn.access": {"handlers": [], "propagate": False},
            # One INFO line per outgoing HTTP call (model, registry, probes) drowns the rest.
            "httpx": {"level": "WARNING"},
            "httpx2": {"level": "WARNING"},
        },
    }
