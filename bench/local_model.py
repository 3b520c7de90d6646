"""Tokens/s streamed through /example/stream ÷ the same generation run by llama-cpp-python directly.

Same model file, same messages, same max_tokens, temperature 0 (so both generate the same
tokens), same thread count. The service runs as `promptserve serve` in a child process (its
model server a child of that); the direct run is `Llama.create_chat_completion(stream=True)`
in this process. Time: request sent → last generated token received, prompt included, on
both sides. Rounds alternate between the two so machine noise hits both alike; medians.

Run: .venv/bin/python bench/local_model.py [--rounds 7] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import yaml  # noqa: E402

from app.backend.store.engine import make_engine  # noqa: E402
from app.backend.store.requests import get_request  # noqa: E402
from app.local_model import bundled_model_path  # noqa: E402
from chains import TEMPLATES_DIR  # noqa: E402
from tests.utils.servers import free_port, wait_until_up  # noqa: E402

SYSTEM = "You are a helpful storyteller."
USER = "Write a long story about a company that makes {product}."
PRODUCT = "toasters"


def _templates(directory: Path, max_tokens: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    template = yaml.safe_load((TEMPLATES_DIR / "example.yaml").read_text())
    messages = template["blueprint"]["messages"]
    messages[0]["content"][0]["text"] = SYSTEM
    messages[1]["content"][0]["text"] = USER
    template["metadata"]["model"]["parameters"] = {"temperature": 0, "max_tokens": max_tokens}
    (directory / "example.yaml").write_text(yaml.safe_dump(template))
    return directory


def _through_service(url: str, db_url: str) -> tuple[int, float, str]:
    """(tokens, seconds, text) of one /example/stream call; tokens as the service logged them."""
    started = time.perf_counter()
    last_data = started
    text, event, ids = "", "", None
    with httpx.stream("POST", f"{url}/example/stream",
                      json={"input": {"product": PRODUCT}}, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "data":
                text += json.loads(line[6:])
                last_data = time.perf_counter()
            elif line.startswith("data: ") and event == "metadata" and "feedback_token" in line:
                ids = json.loads(line[6:])
    assert ids is not None and ids["promptlayer_request_id"] is not None, "no id event"
    engine = make_engine(db_url)
    with engine.connect() as connection:
        stored = get_request(connection, request_id=ids["promptlayer_request_id"])
    engine.dispose()
    assert stored is not None
    return int(stored["output_tokens"]), last_data - started, text


def _direct(llm: Any, max_tokens: int) -> tuple[int, float, str]:
    """(tokens, seconds, text) of the same generation straight from llama-cpp-python."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER.format(product=PRODUCT)},
    ]
    started = time.perf_counter()
    last, tokens, text = started, 0, ""
    for chunk in llm.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0, stream=True
    ):
        content = chunk["choices"][0]["delta"].get("content")
        if content:
            tokens += 1
            text += content
            last = time.perf_counter()
    return tokens, last - started, text


def main() -> None:
    """Run the comparison and print a JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from llama_cpp import Llama

    work = Path(tempfile.mkdtemp(prefix="bench-local-model-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROMPTSERVE_"))}
    env |= {
        "PROMPTSERVE_DATA_DIR": str(work / "data"),
        "PROMPTSERVE_TEMPLATES_DIR": str(_templates(work / "seed", args.max_tokens)),
        "PROMPTSERVE_LOG_LEVEL": "WARNING",
        "PROMPTLAYER_API_KEY": "bench-key",
    }
    db_url = f"sqlite:///{work / 'data' / 'promptserve.db'}"
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    service: list[tuple[int, float, str]] = []
    direct: list[tuple[int, float, str]] = []
    try:
        wait_until_up(f"{url}/readyz", proc=proc, timeout=180)
        # n_threads: llama-cpp-python's default, the same one its server uses.
        llm = Llama(model_path=str(bundled_model_path()), n_ctx=2048, verbose=False)
        _through_service(url, db_url)  # warm-up: first-use costs on both sides
        _direct(llm, args.max_tokens)
        for _ in range(args.rounds):
            service.append(_through_service(url, db_url))
            direct.append(_direct(llm, args.max_tokens))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()

    def rate(runs: list[tuple[int, float, str]]) -> float:
        return statistics.median(tokens / seconds for tokens, seconds, _ in runs)

    summary = {
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "tokens_service": [t for t, _, _ in service],
        "tokens_direct": [t for t, _, _ in direct],
        "same_text": all(s[2] == d[2] for s, d in zip(service, direct, strict=True)),
        "service_tokens_per_s": round(rate(service), 1),
        "direct_tokens_per_s": round(rate(direct), 1),
        "ratio": round(rate(service) / rate(direct), 3),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
