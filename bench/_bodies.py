"""Request bodies the benchmarks send, shaped like the real thing."""

from __future__ import annotations

import time
import uuid
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from bench.fake_model import REPLY
from promptserve.tracing import _blueprints as bp

__all__ = ["INVOKE_BODY", "log_body"]

INVOKE_BODY = {"input": {"product": "toasters"}}
"""POST /example/invoke."""


def log_body(*, prompt_id: int | None) -> dict[str, Any]:
    """A /log-request body as our tracer (and the SDK's log_request) sends it."""
    messages = [
        SystemMessage("You are a helpful copywriter. Answer with the slogan only."),
        HumanMessage("Write a one-sentence slogan for a company that makes toasters."),
    ]
    answer = AIMessage(REPLY, usage_metadata={"input_tokens": 31, "output_tokens": 15,
                                               "total_tokens": 46})
    result = LLMResult(generations=[[ChatGeneration(message=answer)]])
    now = time.time()
    root = str(uuid.uuid4())
    return {
        "provider": "openai", "model": "gpt-4o-mini",
        "input": bp.chat_input(messages), "output": bp.chat_output(result),
        "request_start_time": now - 0.4, "request_end_time": now,
        "parameters": {"temperature": 0.7, "max_tokens": 256, "stream": False},
        "tags": ["route:/example", "endpoint:invoke", "chain:example", "prompt:example",
                 "prompt_version:1", "prompt_label:prod"],
        "metadata": {"langserve_endpoint": "invoke", "route": "/example",
                     "_langchain_run_id": str(uuid.uuid4()), "_langchain_root_run_id": root,
                     "_langchain_parent_run_id": root},
        "prompt_name": "example", "prompt_version_number": 1,
        "prompt_input_variables": {"product": "toasters"},
        "input_tokens": 31, "output_tokens": 15, "price": 0.0,
        "function_name": "langchain.ChatOpenAI", "score": 0, "prompt_id": prompt_id,
        "status": "SUCCESS", "error_type": None, "error_message": None,
    }
