"""The caller of a run, as split labels read it: a key and segment metadata.

Two ways in, both ending in the run's `configurable`: the fields `release_key` and
`release_metadata` (declared to LangServe by `RELEASE_SPECS`, so it validates them: a key
that is not text, or longer than `MAX_KEY_LENGTH`, is a 422), or the headers
`X-PromptServe-Key` and `X-PromptServe-Metadata-<key>`, which the service's config modifier
copies there (`caller_headers`); a header wins over the body, since a gateway in front of the
service sets it for the user it authenticated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import StringConstraints

from promptserve.prompts._arms import MAX_KEY_LENGTH, RELEASE_KEY, RELEASE_METADATA

__all__ = ["KEY_HEADER", "METADATA_HEADER_PREFIX", "RELEASE_SPECS", "CallerError",
           "caller_headers", "with_caller"]

KEY_HEADER = b"x-promptserve-key"
METADATA_HEADER_PREFIX = b"x-promptserve-metadata-"
_PREFIX = b"x-promptserve-"

_Text = Annotated[str, StringConstraints(max_length=MAX_KEY_LENGTH)]

RELEASE_SPECS = (
    ConfigurableFieldSpec(
        id=RELEASE_KEY, annotation=_Text | None, default=None, name="Release key",
        description="Who calls (a user or session id): the same key gets the same version "
                    "of a split release label. Header X-PromptServe-Key does the same.",
    ),
    ConfigurableFieldSpec(
        id=RELEASE_METADATA, annotation=dict[_Text, _Text] | None, default=None,
        name="Release metadata",
        description="Segment values of split release labels ({\"plan\": \"pro\"}). Headers "
                    "X-PromptServe-Metadata-<key> do the same.",
    ),
)


class CallerError(ValueError):
    """A caller header that cannot be used (too long); the service answers 422."""


def caller_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[str | None, dict[str, str] | None]:
    """The key and segment metadata among raw ASGI `headers` (names lower-case), or None.

    Values are read as UTF-8 (Latin-1 if they are not), so a key sent in a header and the
    same key sent in `configurable` hash alike.
    """
    key: str | None = None
    metadata: dict[str, str] | None = None
    for name, value in headers:
        if not name.startswith(_PREFIX):
            continue
        if name == KEY_HEADER:
            key = _text(value, "X-PromptServe-Key")
        elif name.startswith(METADATA_HEADER_PREFIX) and len(name) > len(
                METADATA_HEADER_PREFIX):
            field = name[len(METADATA_HEADER_PREFIX):].decode("latin-1")
            if metadata is None:
                metadata = {}
            metadata[field] = _text(value, f"X-PromptServe-Metadata-{field}")
    return key, metadata


def _text(value: bytes, header: str) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    if len(text) > MAX_KEY_LENGTH:
        raise CallerError(f"header {header} is longer than {MAX_KEY_LENGTH} characters")
    return text


def with_caller(configurable: dict[str, Any], key: str | None,
                metadata: dict[str, str] | None) -> None:
    """Put the headers' `key` and `metadata` into `configurable` (they win over the body)."""
    if key:
        configurable[RELEASE_KEY] = key
    if metadata:
        given = configurable.get(RELEASE_METADATA)
        configurable[RELEASE_METADATA] = {**given, **metadata} if isinstance(given, dict) \
            else metadata
