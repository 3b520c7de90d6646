"""Streaming latencies on /example/stream, sequential requests.

(d) time to first streamed chunk: from sending the request to the first `event: data`,
    bare vs traced vs embedded, interleaved request by request; target traced − bare p50
    ≤ 1 ms.
(e) last data chunk → id event: from the last `event: data` to the `event: metadata` that
    carries `promptlayer_request_id` (right before `event: end`); target p50 ≤ 5 ms on
    loopback. Then again with a proxy between service and backend that delays every chunk
    by 50 ms each way (one HTTP round trip ≥ 100 ms): the id should cost one round trip and
    the proxy should see no new connection while requests are measured.
Times are taken as chunks arrive (httpx `iter_raw`), so events that arrive in the same
chunk get the same time.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench._bodies import INVOKE_BODY
from bench._fleet import fleet, start_variant
from bench._stats import median, pct
from bench.proxy import delay_proxy

__all__ = ["LatencyResult", "run_latency"]

PROXY_DELAY = 0.050


@dataclass
class _Stream:
    first_data: float  # s after sending
    id_gap: float | None  # s from last data to the id event
    request_id: int | None


def stream_once(client: httpx.Client, url: str) -> _Stream:
    """One /stream request, timed as its chunks arrive."""
    sent = time.perf_counter()
    first = last = gap = None
    request_id = None
    buffer = b""
    with client.stream("POST", url, json=INVOKE_BODY) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            now = time.perf_counter()
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                event, buffer = buffer.split(b"\r\n\r\n", 1)
                if event.startswith(b"event: data"):
                    first = first if first is not None else now
                    last = now
                elif event.startswith(b"event: metadata") and last is not None:
                    data = json.loads(event.split(b"data: ", 1)[1])
                    request_id = data.get("promptlayer_request_id")
                    gap = now - last
    if first is None:
        raise RuntimeError(f"{url}: no data event")
    return _Stream(first - sent, gap, request_id)


@dataclass
class LatencyResult:
    """Milliseconds per variant."""

    ttft: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    gap: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    with_id: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    proxy_new_connections: int = -1
    proxy_requests: int = 0

    def lines(self) -> list[str]:
        """Human-readable report."""
        out = ["streaming latency, sequential requests (ms: p50 / p90)"]
        for name, values in self.ttft.items():
            out.append(f"  first data chunk  {name:<15} {median(values):7.2f} / "
                       f"{pct(values, 90):7.2f}  (n={len(values)})")
        bare = median(self.ttft.get("bare", []))
        for name in ("traced", "embedded"):
            if name in self.ttft:
                diff = median(self.ttft[name]) - bare
                out.append(f"  TTFT {name} − bare p50: {diff:+.2f} ms (target ≤ 1 ms: "
                           f"{'met' if diff <= 1 else 'NOT met'})")
        for name, values in self.gap.items():
            n = len(self.ttft.get(name, [])) or len(values)
            out.append(f"  last data → id    {name:<15} {median(values):7.2f} / "
                       f"{pct(values, 90):7.2f}  (id in {self.with_id[name]}/{n})")
        for name in ("traced", "embedded"):
            if name in self.gap:
                ok = median(self.gap[name]) <= 5
                out.append(f"  id gap {name} p50 ≤ 5 ms: {'met' if ok else 'NOT met'}")
        if self.proxy_requests:
            rtt = 2 * PROXY_DELAY * 1000
            gap = median(self.gap["traced+50ms"])
            out.append(f"  with {PROXY_DELAY * 1000:.0f} ms each way (RTT {rtt:.0f} ms): "
                       f"gap p50 {gap:.1f} ms = {gap / rtt:.2f} round trips; new proxy "
                       f"connections during {self.proxy_requests} requests: "
                       f"{self.proxy_new_connections}")
        return out


def _measure(result: LatencyResult, name: str, client: httpx.Client, url: str) -> None:
    done = stream_once(client, url)
    result.ttft[name].append(done.first_data * 1000)
    if done.id_gap is not None:
        result.gap[name].append(done.id_gap * 1000)
    if isinstance(done.request_id, int):
        result.with_id[name] += 1


def run_latency(work: Path, *, samples: int, proxied_samples: int) -> LatencyResult:
    """(d) and (e) on loopback, then (e) through the delaying proxy."""
    result = LatencyResult()
    names = ("bare", "traced", "embedded")
    with fleet(work, names) as (backend, variants), httpx.Client(timeout=30) as client:
        urls = {n: variants[n].server.url + "/example/stream" for n in names}
        for i in range(samples + 10):
            order = names[i % 3:] + names[: i % 3]
            for name in order:
                if i < 10:  # warm-up
                    stream_once(client, urls[name])
                else:
                    _measure(result, name, client, urls[name])
        port = urlsplit(backend.url).port
        assert port is not None
        with contextlib.ExitStack() as stack:
            proxy = stack.enter_context(delay_proxy(port, PROXY_DELAY))
            variant = stack.enter_context(start_variant(
                "traced-proxied", work, backend_url=proxy.url, backend_db=None,
                kind="traced"))
            url = variant.server.url + "/example/stream"
            for _ in range(3):
                stream_once(client, url)  # warm-up: the delivery pool's first connection
            before = proxy.connections
            for _ in range(proxied_samples):
                _measure(result, "traced+50ms", client, url)
            result.proxy_new_connections = proxy.connections - before
            result.proxy_requests = proxied_samples
    return result
