"""The delivery client's errors, and at which stage of an exchange each one happened.

The stage is what a retry policy needs to know: whether the server may have acted on the
request. `TransportError.stage` is one of
- `"connect"`: nothing of the request reached the server (refused, proxy or TLS failure, no
  free connection in time): sending it again cannot store it twice;
- `"lost"`: the request was written, then the connection closed with no byte of an answer
  (a server or gateway that went away, most often before storing anything);
- `"timeout"`: the request was written and no answer came in time (a slow server may still
  be storing it);
- `"answer"`: an answer began or came but cannot be used (malformed, cut short, too large,
  an encoding we did not ask for): the server did act on the request.

`RedirectError` is a 3xx the client does not follow (see `promptserve.tracing._redirects`):
the server answered without acting on the request.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["RedirectError", "Stage", "TransportError", "failure"]

Stage = Literal["connect", "lost", "timeout", "answer"]


class TransportError(Exception):
    """No complete, usable answer: refused, reset, closed early, malformed, or timed out."""

    def __init__(self, message: str, *, stage: Stage = "connect") -> None:
        super().__init__(message)
        self.stage: Stage = stage


class RedirectError(TransportError):
    """A redirect not followed: its status and where it pointed (None if nowhere)."""

    def __init__(self, message: str, *, status: int, location: str | None) -> None:
        super().__init__(message, stage="connect")
        self.status = status
        self.location = location


def failure(message: str, cause: BaseException | None = None, *,
            stage: Stage = "connect") -> TransportError:
    """A TransportError at `stage` with `cause` chained (for errors raised from callbacks)."""
    error = TransportError(message, stage=stage)
    error.__cause__ = cause
    return error
