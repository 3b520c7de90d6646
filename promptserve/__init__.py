"""promptserve for your own code: registry prompts as runnables, chains to serve, a client.

    from promptserve import Chain, RegistryPrompt, PromptServeClient

The server side (`promptserve.server.add_routes`) needs the server's dependencies; nothing
imported here does.
"""

from __future__ import annotations

from promptserve.chain import Chain
from promptserve.client import PromptServeClient, TracedAnswer, TracedStream
from promptserve.prompts import ModelOutputError, RegistryPrompt

__all__ = [
    "Chain",
    "ModelOutputError",
    "PromptServeClient",
    "RegistryPrompt",
    "TracedAnswer",
    "TracedStream",
]
