"""Latency of the dashboard's filtered request list over a large store (target: p95 < 200 ms).

Starts `promptserve backend` in a child process on the given database (filled beforehand by
bench/generate_requests.py), signs in like a browser, then asks for the list with a rotation
of filters, one request at a time: the JSON twin (/api/requests) and the HTML page
(/dashboard/). Prints p50/p95 per filter and overall, plus the other pages for reference.

Run: .venv/bin/python bench/dashboard_latency.py --database-url sqlite:////tmp/dash.db [--n 200]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.utils.servers import free_port, wait_until_up  # noqa: E402

API_KEY = "bench-key"


def _filters(max_id: int) -> list[dict[str, str]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    day = timedelta(days=1)
    return [
        {},
        {"route": "/example"},
        {"endpoint": "stream"},
        {"chain": "translate", "status": "ERROR"},
        {"prompt": "example", "version": "2"},
        {"prompt": "summarize"},
        {"status": "ERROR"},
        {"score_min": "80"},
        {"score_name": "helpfulness", "score_max": "20"},
        {"since": (now - 10 * day).isoformat(), "until": (now - 9 * day).isoformat()},
        {"q": "kettles"},
        {"route": "/translate", "q": "drones"},
        {"tag": "prompt_label:prod", "score_min": "90"},
        {"before": str(max_id // 2)},
        {"route": "/example", "status": "ERROR", "score_min": "50"},
        {"prompt": "translate", "version": "1", "endpoint": "batch", "before": str(max_id // 3)},
    ]


def _login(client: httpx.Client) -> None:
    form = client.get("/dashboard/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, "no CSRF token on the sign-in form"
    answer = client.post("/dashboard/login", data={"key": API_KEY, "csrf": csrf.group(1)})
    assert answer.status_code == 303, answer.text


def _time(client: httpx.Client, path: str, params: dict[str, str], **headers: str) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (path, params, response.status_code, response.text[:300])
    return elapsed


def _p(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def _measure(
    client: httpx.Client, path: str, filters: list[dict[str, str]], n: int, **headers: str
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for _ in range(2):  # warm-up pass: first touches of a cold page cache are not the steady state
        for params in filters:
            _time(client, path, params, **headers)
    for i in range(n):
        params = filters[i % len(filters)]
        key = "&".join(f"{k}={v}" for k, v in params.items()) or "(none)"
        timings.setdefault(key, []).append(_time(client, path, params, **headers))
    return timings


def _report(title: str, timings: dict[str, list[float]]) -> float:
    print(f"\n{title}")
    everything = [t for ts in timings.values() for t in ts]
    for key, values in timings.items():
        print(f"  {key[:70]:70s} p50 {_p(values, 50):7.1f} ms  max {max(values):7.1f} ms")
    p95 = _p(everything, 95)
    print(
        f"  overall ({len(everything)} requests): p50 {_p(everything, 50):.1f} ms, p95 {p95:.1f} ms"
    )
    return p95


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--n", type=int, default=200, help="list requests per variant (JSON, HTML)")
    args = parser.parse_args()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "PROMPTLAYER_API_KEY": API_KEY,
        "PORT": str(port),
        "PROMPTSERVE_DATA_DIR": tempfile.mkdtemp(prefix="dash-bench-"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "backend"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/healthz", proc=proc, timeout=120)
        with httpx.Client(base_url=url, timeout=60) as client:
            _login(client)
            top = client.get("/api/requests", params={"limit": "1"}).json()["requests"]
            filters = _filters(top[0]["id"] if top else 1)
            json_p95 = _report(
                "JSON twin /api/requests", _measure(client, "/api/requests", filters, args.n)
            )
            html_p95 = _report(
                "HTML page /dashboard/", _measure(client, "/dashboard/", filters, args.n)
            )
            others: dict[str, list[float]] = {
                "/dashboard/prompts": [],
                "/dashboard/prompts/1": [],
                "/dashboard/prompts/1/diff": [],
                f"/dashboard/requests/{top[0]['id'] if top else 1}": [],
            }
            for path, values in others.items():
                _time(client, path, {})
                values.extend(_time(client, path, {}) for _ in range(10))
            _report("Other pages (10 each)", others)
        print(
            f"\nfiltered list p95: JSON {json_p95:.1f} ms, HTML {html_p95:.1f} ms (target < 200 ms)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
