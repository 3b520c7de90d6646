"""/extract: who a text is about and its sentiment, as an object checked against the JSON
schema the `extract` template carries. An answer that misses it is logged as an error and
answered 502 (`RegistryPrompt.structured`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from promptserve import Chain, RegistryPrompt

extract = RegistryPrompt("extract", label="prod")


class Extraction(BaseModel):
    """What the text is about and how it feels about it."""

    name: str
    sentiment: Literal["positive", "negative", "neutral"]


CHAIN = Chain("/extract", extract.structured(), output_type=Extraction)
