"""PromptLayer's LangChain integration, working: the callback handler and the two models."""

from __future__ import annotations

from promptserve.integration._background import BackgroundDelivery, default_delivery
from promptserve.integration._handler import PromptLayerCallbackHandler
from promptserve.integration._models import PromptLayerChatOpenAI, PromptLayerOpenAI

__all__ = [
    "BackgroundDelivery",
    "PromptLayerCallbackHandler",
    "PromptLayerChatOpenAI",
    "PromptLayerOpenAI",
    "default_delivery",
]
