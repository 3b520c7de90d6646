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


class Product(BaseModel):
    """What the slogan is for."""

    product: str


class Critique(BaseModel):
    """The slogan and what the critic thinks of it."""

    slogan: str
    critique: str


CHAIN = Chain(
    "/critique",
    RunnablePassthrough.assign(slogan=slogan | StrOutputParser())
    | {"slogan": itemgetter("slogan"), "critique": critique | StrOutputParser()},
    # Declared: LangChain derives a sequence's input from its second step after an assign,
    # which here asks for nothing (the assign makes `slogan`).
    input_type=Product,
    output_type=Critique,
)
