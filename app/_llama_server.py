"""llama-cpp-python's OpenAI-compatible server, taught what ChatOpenAI relies on.

Run as `python -m app._llama_server --model FILE --alias NAME --port N` (by
`app.local_model`). llama-cpp-python 0.3 differs from OpenAI in ways that matter here:
- it ignores `max_completion_tokens`, which langchain-openai sends instead of `max_tokens`
  (the template's limit would be lost): the request body is rewritten to `max_tokens`;
- it refuses OpenAI's structured output, `response_format: {type: json_schema,
  json_schema: {schema}}`, and takes the same schema as `{type: json_object, schema}`
  (a grammar then constrains every token): the body is rewritten to that;
- it never reports token usage in streams (`stream_options.include_usage`): each streamed
  completion gets OpenAI's final usage chunk (`choices: []`, `usage: {...}`), counted by
  llama.cpp's own tokenizer (prompt) and generated tokens (one stream chunk each).
And it streams faster: its server generates a token only when the event loop asks for
the next one (a thread hop per token, stalled whenever the loop is busy); here a thread
generates ahead into a queue the loop drains (`_read_ahead`). A second request no longer
cuts a running stream short (`interrupt_requests` off): requests queue for the model.
Everything else is llama-cpp-python's server unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["main"]

_CHAT_PATH = "/v1/chat/completions"
# One llama context per process: every generation holds this for its whole duration, so a
# stream whose client left cannot overlap the next request while it winds down.
_GENERATION_LOCK = threading.Lock()


class MaxCompletionTokens:
    """ASGI middleware: `max_completion_tokens` becomes `max_tokens` on chat requests."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap llama-cpp-python's app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the body of POST /v1/chat/completions; pass everything else on."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != _CHAT_PATH:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = _rewrite(b"".join(chunks))
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # the disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def _rewrite(raw: bytes) -> bytes:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw  # let the server answer the malformed body itself
    if not isinstance(body, dict):
        return raw
    changed = False
    if body.get("max_completion_tokens") is not None:
        limit = body.pop("max_completion_tokens")
        if body.get("max_tokens") is None:
            body["max_tokens"] = limit
        changed = True
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        body["response_format"] = {"type": "json_object", **({"schema": schema} if schema
                                                             else {})}
        changed = True
    return json.dumps(body).encode() if changed else raw


def _install_stream_usage() -> None:
    """Patch llama-cpp-python (pinned version) so streamed chat completions report usage."""
    from llama_cpp import Llama, llama_chat_format

    create_completion: Any = Llama.create_completion
    to_chat_chunks: Any = llama_chat_format._convert_text_completion_chunks_to_chat

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("stream"):
            with _GENERATION_LOCK:
                return create_completion(self, *args, **kwargs)
        result = _locked(create_completion(self, *args, **kwargs))
        prompt = kwargs.get("prompt", args[0] if args else "")
        if isinstance(prompt, str):
            prompt_tokens = len(self.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
        else:
            prompt_tokens = len(prompt)
        return _with_usage(result, prompt_tokens)

    def chat_chunks(chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        usage: dict[str, Any] = {}

        def tap() -> Iterator[dict[str, Any]]:
            for chunk in chunks:
                usage.update(chunk.get("usage") or {})
                yield chunk

        last: dict[str, Any] | None = None
        for chunk in to_chat_chunks(tap()):
            last = chunk
            yield chunk
        if usage and last is not None:
            yield {key: last[key] for key in ("id", "model", "created", "object")} | {
                "choices": [],
                "usage": usage,
            }

    Llama.create_completion = counted  # type: ignore[method-assign]
    setattr(llama_chat_format, "_convert_text_completion_chunks_to_chat", chat_chunks)  # noqa: B010


def _locked(chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    # Streams generate lazily, in whichever thread iterates: hold the lock while it does.
    with _GENERATION_LOCK:
        yield from chunks


async def _read_ahead(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    """Drain `iterator` in a thread of its own, as fast as it yields; stop when we stop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def produce() -> None:
        try:
            for item in iterator:
                put("item", item)
                if stop.is_set():
                    break
        except BaseException as exc:
            put("error", exc)
        else:
            put("done", None)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # releases the generation lock in this thread

    threading.Thread(target=produce, name="llama-generate", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


def _with_usage(chunks: Iterator[dict[str, Any]], prompt_tokens: int) -> Iterator[dict[str, Any]]:
    # llama.cpp streams one chunk per generated token (bytes of a split UTF-8 character are
    # held back and sent with the next one, the rare case where this undercounts).
    generated = 0
    for chunk in chunks:
        choice = chunk["choices"][0]
        if choice.get("text"):
            generated += 1
        if choice.get("finish_reason") is not None:
            chunk = {**chunk, "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": generated,
                "total_tokens": prompt_tokens + generated,
            }}
        yield chunk


def main(argv: list[str] | None = None) -> None:
    """Serve one GGUF model under an alias on 127.0.0.1 until terminated."""
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-threads", type=int, default=None)
    args = parser.parse_args(argv)
    _install_stream_usage()
    from llama_cpp.server import app as server_app

    setattr(server_app, "iterate_in_threadpool", _read_ahead)  # noqa: B010
    model: dict[str, Any] = {"model": args.model, "model_alias": args.alias, "n_ctx": args.n_ctx}
    if args.n_threads:
        model["n_threads"] = args.n_threads
        model["n_threads_batch"] = args.n_threads
    app = create_app(
        server_settings=ServerSettings(
            host=args.host, port=args.port, interrupt_requests=False
        ),
        model_settings=[ModelSettings(**model, verbose=False)],
    )
    # h11 as our own servers (app/cli.py), though httptools is installed for log delivery.
    uvicorn.run(MaxCompletionTokens(app), host=args.host, port=args.port, log_level="warning",
                http="h11")


if __name__ == "__main__":
    main()
