"""/critique: a slogan for a product, then a critique of that slogan. Two registry prompts in a
row; both calls are logged, each linked to its own prompt, as one group."""

from __future__ import annotations

from operator import itemgetter

from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnablePassthrough
from pydantic import BaseModel

from promptserve import Chain, RegistryPrompt

slogan = RegistryPrompt("slogan", label="prod")
critique = RegistryPrompt("critique", label="prod")


class Critique(BaseModel):
    """The slogan and what the critic thinks of it."""

    slogan: str
    critique: str


CHAIN = Chain(
    "/critique",
    RunnablePassthrough.assign(slogan=slogan | StrOutputParser())
    | {"slogan": itemgetter("slogan"), "critique": critique | StrOutputParser()},
    output_type=Critique,
)
