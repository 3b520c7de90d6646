"""promptserve for your own code: PromptLayer's LangChain integration, registry prompts as
runnables, chains to serve, and the client of a served chain.

    from promptserve import PromptLayerCallbackHandler, PromptLayerChatOpenAI, RegistryPrompt

The server side (`promptserve.server.add_routes`) needs the server's dependencies; nothing
imported here does.
"""

from __future__ import annotations

from promptserve.chain import Chain
from promptserve.client import PromptServeClient, TracedAnswer, TracedStream
from promptserve.integration import (
    PromptLayerCallbackHandler,
    PromptLayerChatOpenAI,
    PromptLayerOpenAI,
)
from promptserve.prompts import ModelOutputError, RegistryPrompt

__all__ = [
    "Chain",
    "ModelOutputError",
    "PromptLayerCallbackHandler",
    "PromptLayerChatOpenAI",
    "PromptLayerOpenAI",
    "PromptServeClient",
    "RegistryPrompt",
    "TracedAnswer",
    "TracedStream",
]
