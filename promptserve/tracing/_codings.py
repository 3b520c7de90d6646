"""Compressed answers: what the delivery client asks for, and their bounded decoding.

We offer gzip and deflate (zlib, in the standard library): the codings every server has.
Decoding stops at `limit` bytes of output, so a small compressed answer cannot expand into
gigabytes in memory (a "zip bomb" or a broken server).
"""

from __future__ import annotations

import zlib

__all__ = ["ACCEPT_ENCODING", "decode"]

ACCEPT_ENCODING = "gzip, deflate"

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


def decode(body: bytes, content_encoding: str, *, limit: int) -> bytes:
    """`body` with the codings of `content_encoding` undone (last applied, first undone).

    Raises ValueError for a coding we did not offer, a body that does not decode, or one
    that decodes to more than `limit` bytes.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        try:
            body = _undo(coding, body, limit)
        except zlib.error as exc:
            raise ValueError(f"answer does not decode as {coding}: {exc}") from exc
    return body


def _undo(coding: str, body: bytes, limit: int) -> bytes:
    if coding == "identity":
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, _GZIP, limit)
    if coding == "deflate":
        try:
            return _inflate(body, _ZLIB, limit)
        except zlib.error:
            # "deflate" is meant to be zlib-wrapped; some servers send it raw.
            return _inflate(body, _RAW_DEFLATE, limit)
    raise ValueError(f"answer in content coding {coding!r}, which we did not ask for")


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(data, limit + 1)
    if len(out) > limit or decompressor.unconsumed_tail:
        raise ValueError(f"answer larger than {limit} bytes once decompressed")
    if not decompressor.eof:
        raise zlib.error("compressed answer ends early")
    return out
