"""/tools: an assistant that may call `multiply`; the chain runs each call the model asks
for and calls the model again with the results, until it answers in words.

The loop is a plain generator, where promptserve cannot see the prompt it uses: the chain
declares it (`prompts=[assistant]`). The final answer streams as the model writes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig, RunnableGenerator
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel

from promptserve import Chain, ModelOutputError, RegistryPrompt

assistant = RegistryPrompt("assistant", label="prod")

# The model's tool rounds before it must have answered (a model that keeps calling tools
# would otherwise loop forever).
MAX_TOOL_ROUNDS = 4


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


TOOLS: dict[str, BaseTool] = {multiply.name: multiply}


class Question(BaseModel):
    """An arithmetic question in words."""

    question: str


async def answer(inputs: AsyncIterator[dict[str, Any]],
                 config: RunnableConfig) -> AsyncIterator[str]:
    """Call the assistant, run the tools it asks for, and stream its final words."""
    question = ""
    async for item in inputs:
        question = item["question"]
    scratchpad: list[BaseMessage] = []
    for _ in range(MAX_TOOL_ROUNDS + 1):
        message: AIMessageChunk | None = None
        async for chunk in assistant.astream(
            {"question": question, "scratchpad": scratchpad}, config
        ):
            message = chunk if message is None else message + chunk  # type: ignore[assignment]
            if chunk.text:
                yield chunk.text
        if message is None or not message.tool_calls:
            return
        scratchpad.append(message)
        for call in message.tool_calls:
            tool_ = TOOLS.get(call["name"])
            if tool_ is None:
                raise _misbehaved(config, f"the model asked for an unknown tool {call['name']!r}")
            scratchpad.append(await tool_.ainvoke(call, config))
    raise _misbehaved(config, f"the model still asked for tools after {MAX_TOOL_ROUNDS} rounds")


def _misbehaved(config: RunnableConfig, problem: str) -> ModelOutputError:
    version = assistant.version_for(config)
    return ModelOutputError(version.name, version.number, problem)


CHAIN = Chain(
    "/tools",
    RunnableGenerator(answer, name="tools"),  # type: ignore[arg-type]  # takes config too
    input_type=Question,
    output_type=str,
    prompts=[assistant],
)
