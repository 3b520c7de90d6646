"""PromptLayerTracer: a per-request LangChain callback handler logging every LLM call.

Every callback body is wrapped so it logs and carries on: tracing must never fail or slow a
user's request. The only side effect is `LogDelivery.submit`, which returns at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from promptserve.tracing import _blueprints as bp
from promptserve.tracing import _llm_start_fix
from promptserve.tracing._delivery import LogDelivery
from promptserve.tracing._errors import error_message, error_type
from promptserve.tracing._links import link_of
from promptserve.tracing._runs import LLMCall, RunTree, as_uuid
from promptserve.tracing._sanitize import sanitised
from promptserve.tracing._structured import OUTPUT_SCHEMA_ERROR, schema_problem
from promptserve.tracing._types import LogBody, PromptRef

__all__ = ["PromptLayerTracer", "prompt_tags"]

logger = logging.getLogger(__name__)

_llm_start_fix.apply()


def prompt_tags(prompt: PromptRef, label: str | None = None) -> list[str]:
    """The tags of a call made with a registry prompt: `prompt:<name>`, `prompt_version:<n>`,
    and `prompt_label:<label>` when the prompt follows a release label."""
    tags = [f"prompt:{prompt.name}"]
    if prompt.version is not None:
        tags.append(f"prompt_version:{prompt.version}")
    if label:
        tags.append(f"prompt_label:{label}")
    return tags


class PromptLayerTracer(AsyncCallbackHandler):
    """Logs each LLM call of the runs it sees to PromptLayer; one instance per request."""

    # Inline: LangChain awaits inline handlers one by one, while every non-inline handler
    # costs a task per event (8 events per run of the example chain). Our callbacks never
    # await, so running them inline delays nothing. `_llm_start_fix` mends the one LangChain
    # path that mistreats non-inline handlers when an inline one is present.
    run_inline = True
    raise_error = False

    def __init__(
        self,
        delivery: LogDelivery,
        *,
        tags: Sequence[str],
        prompt: PromptRef | None = None,
        pl_tags: Sequence[str] | None = None,
        pl_id_callback: Callable[[int], Any] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._delivery = delivery
        self._tags = [*tags, *(pl_tags or ())]
        self._prompt = prompt
        self._pl_id_callback = pl_id_callback
        self._metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._tree = RunTree()
        self._requests: dict[UUID, list[asyncio.Future[int | None]]] = {}
        self._group_tasks: list[asyncio.Future[Any]] = []
        self._group_ids: dict[UUID, int] = {}

    # -- public API for the server ---------------------------------------------------------

    @property
    def root_run_ids(self) -> list[UUID]:
        """Root run ids in start order."""
        return self._tree.root_ids

    @property
    def group_ids(self) -> dict[UUID, int]:
        """PromptLayer group id per root run, once its group has been created."""
        return dict(self._group_ids)

    async def request_ids(
        self, root_run_id: UUID | str, *, timeout: float
    ) -> list[int | None]:
        """That root's PromptLayer request ids, in LLM-call order; None if not in time."""
        futures = list(self._requests.get(as_uuid(root_run_id), ()))
        if timeout > 0 and not all(f.done() for f in futures):
            await asyncio.wait(futures, timeout=timeout)
        return [_result(f) for f in futures]

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` s for this tracer's group tasks; True if all finished."""
        pending = [t for t in self._group_tasks if not t.done()]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still

    def open_root(self, run_id: UUID | str, inputs: Any) -> BaseCallbackHandler:
        """Trace one root run whose id and input the caller knows; `close_root` ends it.

        Put the handler returned into that run's callbacks in place of this tracer: it
        takes the LLM calls only, so LangChain skips dispatching every chain start and end
        (eight per run of `prompt | model | parser`), which the tracer would only track to
        find each call's root and that root's input. The prompt's input variables then come
        from the root's input alone. The service's TracedRunnable opens its runs this way.
        """
        root_id = as_uuid(run_id)
        self._tree.start(root_id, None, inputs=inputs)
        return _RootCalls(self, root_id)

    def close_root(self, run_id: UUID | str) -> None:
        """The root run opened with `open_root` has ended (a chain end, for grouping)."""
        self._end(as_uuid(run_id))

    # -- run tree ----------------------------------------------------------------------------

    async def on_chain_start(
        self, serialized: dict[str, Any], inputs: dict[str, Any], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Record the run (and its inputs, for prompt_input_variables)."""
        try:
            self._tree.start(run_id, parent_run_id, inputs=inputs)
        except Exception:
            logger.exception("PromptLayer tracer: on_chain_start failed")

    async def on_chain_end(
        self, outputs: dict[str, Any], *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, **kwargs: Any,
    ) -> None:
        """Forget the run; a root's end schedules its group."""
        self._end(run_id)

    async def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, **kwargs: Any,
    ) -> None:
        """Same as a chain end: the LLM error itself was logged by on_llm_error."""
        self._end(run_id)

    async def on_tool_start(
        self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Tools sit between agents and their LLM calls; track them to keep the tree whole."""
        try:
            self._tree.start(run_id, parent_run_id)
        except Exception:
            logger.exception("PromptLayer tracer: on_tool_start failed")

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the tool run."""
        self._end(run_id)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the tool run."""
        self._end(run_id)

    async def on_retriever_start(
        self, serialized: dict[str, Any], query: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, **kwargs: Any,
    ) -> None:
        """Track retriever runs so the tree stays whole."""
        try:
            self._tree.start(run_id, parent_run_id)
        except Exception:
            logger.exception("PromptLayer tracer: on_retriever_start failed")

    async def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the retriever run."""
        self._end(run_id)

    async def on_retriever_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Forget the retriever run."""
        self._end(run_id)

    # -- LLM calls ---------------------------------------------------------------------------

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Remember the chat call's input; conversion waits until the end (off the TTFT)."""
        self._chat_started(serialized, messages, run_id, parent_run_id, metadata, kwargs)

    def _chat_started(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], run_id: UUID,
        parent_run_id: UUID | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any],
        root_id: UUID | None = None,
    ) -> None:
        try:
            call = self._call("chat", run_id, serialized, metadata, kwargs)
            call.messages = messages[0] if messages else []
            self._tree.start(run_id, parent_run_id, llm=call, root_id=root_id)
        except Exception:
            logger.exception("PromptLayer tracer: on_chat_model_start failed")

    async def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Remember the completion call's prompt (LangChain sends one prompt per run)."""
        self._completion_started(serialized, prompts, run_id, parent_run_id, metadata, kwargs)

    def _completion_started(
        self, serialized: dict[str, Any], prompts: list[str], run_id: UUID,
        parent_run_id: UUID | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any],
        root_id: UUID | None = None,
    ) -> None:
        try:
            call = self._call("completion", run_id, serialized, metadata, kwargs)
            call.prompt = prompts[0] if prompts else ""
            self._tree.start(run_id, parent_run_id, llm=call, root_id=root_id)
        except Exception:
            logger.exception("PromptLayer tracer: on_llm_start failed")

    async def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, **kwargs: Any,
    ) -> None:
        """Build the SUCCESS log and hand it to delivery."""
        try:
            node = self._tree.get(run_id)
            if node is not None and node.llm is not None:
                call = node.llm
                output = (bp.chat_output(response) if call.kind == "chat"
                          else bp.completion_output(response))
                tokens = bp.token_usage(response)
                body = self._body(run_id, node.parent_id, node.root_id, call, output, tokens)
                problem = schema_problem(call.invocation_params, response)
                if problem is not None:
                    # The model answered, but not in the shape it was asked for. The
                    # hosted error_type set has no such kind: UNKNOWN_ERROR, named in the text.
                    body.update(status="ERROR", error_type="UNKNOWN_ERROR",
                                error_message=f"{OUTPUT_SCHEMA_ERROR}: {problem}")
                self._submit(run_id, node.root_id, body)
        except Exception:
            logger.exception("PromptLayer tracer: on_llm_end failed")
        self._end(run_id)

    async def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, **kwargs: Any,
    ) -> None:
        """Build the ERROR log (error type and message) and hand it to delivery."""
        try:
            node = self._tree.get(run_id)
            if node is not None and node.llm is not None:
                call = node.llm
                body = self._body(run_id, node.parent_id, node.root_id, call,
                                  bp.empty_output(call.kind), (0, 0))
                body.update(status="ERROR", error_type=error_type(error),
                            error_message=error_message(error))
                self._submit(run_id, node.root_id, body)
        except Exception:
            logger.exception("PromptLayer tracer: on_llm_error failed")
        self._end(run_id)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _call(
        kind: str, run_id: UUID, serialized: dict[str, Any] | None,
        metadata: dict[str, Any] | None, kwargs: dict[str, Any],
    ) -> LLMCall:
        return LLMCall(
            kind="chat" if kind == "chat" else "completion",
            started=time.time(),
            serialized=serialized or {},
            invocation_params=dict(kwargs.get("invocation_params") or {}),
            metadata=dict(metadata or {}),
            name=kwargs.get("name"),
            link=link_of(as_uuid(run_id)),
        )

    def _body(
        self, run_id: UUID, parent_id: UUID | None, root_id: UUID, call: LLMCall,
        output: dict[str, Any], tokens: tuple[int, int],
    ) -> LogBody:
        provider, model = bp.provider_and_model(call.serialized, call.invocation_params,
                                                call.metadata)
        blueprint = (bp.chat_input(call.messages, call.invocation_params) if call.kind == "chat"
                     else bp.completion_input(call.prompt))
        # The hosted PromptLayer refuses a whole log over one part its schema lacks: map or
        # drop such parts here and say so in the metadata (_hosted_blueprint).
        blueprint, dropped = bp.hosted_blueprint(blueprint, "input", provider)
        output, dropped_out = bp.hosted_blueprint(output, "output", provider)
        metadata = {**self._metadata, "_langchain_run_id": str(run_id),
                    "_langchain_root_run_id": str(root_id)}
        if parent_id is not None:
            metadata["_langchain_parent_run_id"] = str(parent_id)
        tags = list(self._tags)
        prompt: PromptRef | None
        if call.link is not None:
            # A registry prompt's call: linked to that prompt, with that call's variables.
            prompt = call.link.prompt
            variables: Mapping[str, Any] = call.link.variables
            tags += prompt_tags(prompt, call.link.label)
            if call.link.tags:  # a split label's arm (release:, arm: tags and metadata)
                tags += call.link.tags
                metadata.update(call.link.metadata or {})
        else:
            prompt = self._prompt
            variables = (self._tree.input_variables(root_id, prompt.input_variable_names)
                         if prompt else {})
        tags, cut = bp.hosted_tags(tags)
        notes = [*dropped, *dropped_out, *cut]
        if notes:
            metadata[bp.DROPPED_KEY] = bp.notes_text(notes)
        # The keys of the SDK's log_request (docs/PROMPTLAYER_API.md §2.1) plus api_type, in
        # its order; times as the ISO text the hosted schema asks for.
        return {
            "provider": provider,
            "model": model,
            "input": blueprint,
            "output": output,
            "request_start_time": bp.iso_time(call.started),
            "request_end_time": bp.iso_time(time.time()),
            "parameters": bp.parameters(call.invocation_params),
            "tags": tags,
            "metadata": metadata,
            "prompt_name": prompt.name if prompt else None,
            "prompt_version_number": prompt.version if prompt else None,
            "prompt_input_variables": {k: bp.stringify_variable(v) for k, v in variables.items()},
            "input_tokens": tokens[0],
            "output_tokens": tokens[1],
            "price": 0.0,
            "function_name": bp.function_name(call.serialized, call.name),
            "score": 0,
            "prompt_id": prompt.template_id if prompt else None,
            "api_type": bp.api_type(provider, call.serialized, call.invocation_params),
            "status": "SUCCESS",
            "error_type": None,
            "error_message": None,
        }

    def _submit(self, run_id: UUID, root_id: UUID, body: LogBody) -> None:
        body = sanitised(body)  # NUL/lone surrogates → U+FFFD: no store refuses the log
        future = self._delivery.submit(body, idempotency_key=str(run_id))
        self._requests.setdefault(root_id, []).append(future)
        self._submitted(run_id, future)
        if self._pl_id_callback is not None:
            _in_loop_of(future, lambda: future.add_done_callback(self._notify_id))

    def _submitted(self, run_id: UUID, future: asyncio.Future[int | None]) -> None:
        """The log of LLM run `run_id` is on its way (a hook for long-lived handlers)."""

    def _notify_id(self, future: asyncio.Future[int | None]) -> None:
        request_id = _result(future)
        if request_id is None or self._pl_id_callback is None:
            return
        self._call_back(self._pl_id_callback, request_id)

    def _call_back(self, callback: Callable[[int], Any], request_id: int) -> None:
        """Call `pl_id_callback` (on the delivery loop: a served request's is quick)."""
        try:
            callback(request_id)
        except Exception:
            logger.exception("PromptLayer tracer: pl_id_callback failed")

    def _end(self, run_id: UUID) -> None:
        try:
            node, root = self._tree.finish(run_id)
            if node is not None and root is not None:
                if root.llm_calls >= 2:
                    futures = list(self._requests.get(node.root_id, ()))
                    self._group_tasks.append(
                        self._delivery.spawn(self._group(node.root_id, futures)))
                self._root_ended(node.root_id)
        except Exception:
            logger.exception("PromptLayer tracer: ending run %s failed", run_id)

    def _root_ended(self, root_id: UUID) -> None:
        """A root and its tree are done (a hook: a per-request tracer keeps its ids)."""

    async def _group(self, root_id: UUID, futures: list[asyncio.Future[int | None]]) -> None:
        """Put every delivered request of one root into one new PromptLayer group."""
        try:
            if futures:
                await asyncio.wait(futures)
            ids = [i for i in (_result(f) for f in futures) if i is not None]
            if not ids:
                return
            group_id = await self._delivery.create_group()
            self._group_ids[root_id] = group_id
            await asyncio.gather(*(self._delivery.track_group(i, group_id) for i in ids))
        except Exception:
            logger.exception("PromptLayer tracer: grouping root %s failed", root_id)


class _RootCalls(AsyncCallbackHandler):
    """The LLM calls of one root run opened with `PromptLayerTracer.open_root`."""

    run_inline = True
    raise_error = False

    def __init__(self, tracer: PromptLayerTracer, root_id: UUID) -> None:
        self._tracer = tracer
        self._root_id = root_id

    # LangChain reads these before dispatching an event; only LLM events get through.
    ignore_chain = ignore_agent = ignore_retriever = ignore_retry = ignore_custom_event = True

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Start the call under this root."""
        self._tracer._chat_started(serialized, messages, run_id, parent_run_id, metadata,
                                   kwargs, root_id=self._root_id)

    async def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        """Start the call under this root."""
        self._tracer._completion_started(serialized, prompts, run_id, parent_run_id, metadata,
                                         kwargs, root_id=self._root_id)

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Log the call, as the tracer does."""
        await self._tracer.on_llm_end(response, **kwargs)

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        """Log the failed call, as the tracer does."""
        await self._tracer.on_llm_error(error, **kwargs)


def _result(future: asyncio.Future[int | None]) -> int | None:
    if not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


def _in_loop_of(future: asyncio.Future[Any], fn: Callable[[], Any]) -> None:
    # Futures belong to the delivery loop; from a sync-path callback thread, hop over.
    loop = future.get_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn()
    else:
        loop.call_soon_threadsafe(fn)
