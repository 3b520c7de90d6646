"""Errors the backend answers with: each carries its HTTP status and a message naming the field."""

from __future__ import annotations

__all__ = ["ApiError", "BadRequest", "NotFound", "Unauthorized"]


class ApiError(Exception):
    """An expected failure, answered as `{"message": ...}` with `status`."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    """Invalid input (400; also for what FastAPI would call 422, see the module docstring)."""

    status = 400


class Unauthorized(ApiError):
    """Missing or wrong API key."""

    status = 401


class NotFound(ApiError):
    """An unknown prompt, version, label, request or group."""

    status = 404
