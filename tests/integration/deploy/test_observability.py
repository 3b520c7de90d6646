"""/metrics counts move as requests are served; /readyz follows the model; JSON logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx

from app.observability import JsonFormatter, request_id_var
from app.service import create_app
from tests.integration.deploy.conftest import metric_value
from tests.integration.service.conftest import SERVICE_KEY, service_settings
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

INPUT = {"input": {"product": "kettles"}}


def test_metrics_move_as_requests_are_served(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    settings = service_settings(tmp_path, fake_llm[1])
    with serve_in_thread(create_app(settings)) as url:
        before = httpx.get(f"{url}/metrics").text
        answers = [httpx.post(f"{url}/example/invoke", json=INPUT) for _ in range(3)]
        assert all(a.status_code == 200 for a in answers)
        with httpx.stream("POST", f"{url}/example/stream", json=INPUT) as stream:
            assert stream.status_code == 200
            stream.read()
        request_id = answers[0].json()["metadata"]["promptlayer_request_id"]
        scored = httpx.post(
            f"{url}/feedback", json={"request_id": request_id, "score": 80},
            headers={"X-API-Key": SERVICE_KEY},
        )
        assert scored.status_code == 200
        refused = httpx.post(f"{url}/feedback", json={"request_id": request_id, "score": 1})
        assert refused.status_code == 401
        after = httpx.get(f"{url}/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def moved(name: str, **labels: str) -> float:
        return metric_value(text, name, **labels) - metric_value(before, name, **labels)

    route = {"route": "/example/invoke", "method": "POST", "status": "200"}
    assert moved("promptserve_http_requests_total", **route) == 3
    assert moved("promptserve_http_requests_total", route="/example/stream", status="200") == 1
    assert moved("promptserve_http_request_duration_seconds_count", route="/example/invoke") == 3
    assert moved("promptserve_logs_delivered_total") >= 4
    assert metric_value(text, "promptserve_logs_pending") == 0
    # Delivery's own figures: queue drained, nothing spooled.
    assert metric_value(text, "promptserve_delivery_queue_depth") == 0
    assert metric_value(text, "promptserve_delivery_spool_pending") == 0
    assert metric_value(text, "promptserve_delivery_log_posts_total") >= 4
    assert moved("promptserve_feedback_total", outcome="recorded") == 1
    assert moved("promptserve_feedback_total", outcome="rejected") == 1


def test_readyz_fails_while_the_model_is_unreachable(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as llm_url:
        settings = service_settings(tmp_path, llm_url)
        app = create_app(settings)
        with serve_in_thread(app) as url:
            ready = httpx.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"chains": True, "registry": True, "model": True}
    # Same settings, model server gone: the service starts (chains build offline) but is not ready.
    with serve_in_thread(create_app(settings)) as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"] is False
        assert ready.json()["checks"]["registry"] is True


def test_responses_carry_a_request_id_and_logs_are_json(
    tmp_path: Path, fake_llm: tuple[FakeOpenAI, str], caplog
) -> None:
    settings = service_settings(tmp_path, fake_llm[1])
    with serve_in_thread(create_app(settings)) as url, caplog.at_level(logging.INFO):
        answer = httpx.post(f"{url}/example/invoke", json=INPUT, headers={"X-Request-Id": "abc-1"})
        generated = httpx.get(f"{url}/healthz")
        mounted = httpx.get(f"{url}/promptlayer/healthz")
        metrics = httpx.get(f"{url}/metrics").text
    assert answer.headers["x-request-id"] == "abc-1"
    assert len(generated.headers["x-request-id"]) == 32
    # Routes of the mounted backend are labelled with their template under the mount.
    assert mounted.status_code == 200
    mounted_route = {"route": "/promptlayer/healthz"}
    assert metric_value(metrics, "promptserve_http_requests_total", **mounted_route) == 1
    access = [r for r in caplog.records if r.name == "promptserve.access"]
    mine = next(r for r in access if getattr(r, "request_id", None) == "abc-1")
    line = json.loads(JsonFormatter().format(mine))
    assert line["route"] == "/example/invoke" and line["status"] == 200
    assert line["run_id"] == answer.json()["metadata"]["run_id"]
    pl_request_id = answer.json()["metadata"]["promptlayer_request_id"]
    assert line["promptlayer_request_id"] == str(pl_request_id)
    assert line["pid"] > 0 and line["level"] == "INFO"


def test_json_formatter_adds_context_request_id_and_exceptions() -> None:
    from app.observability.logging import RequestIdFilter

    record = logging.makeLogRecord({"msg": "hello %s", "args": ("x",), "levelname": "WARNING"})
    token = request_id_var.set("req-9")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x"
    assert line["request_id"] == "req-9"
    assert "ValueError: boom" in line["exception"]


def test_json_formatter_writes_what_orjson_cannot() -> None:
    record = logging.makeLogRecord({"msg": "odd", "levelname": "INFO", "huge": 2**70,
                                    "when": object(), "text": "café"})
    line = json.loads(JsonFormatter().format(record))
    assert line["huge"] == 2**70 and line["text"] == "café"
    assert line["when"].startswith("<object object")


def test_json_formatter_stamps_each_record_with_its_own_time() -> None:
    formatter = JsonFormatter()
    stamps = []
    for created in (1_800_000_000.25, 1_800_000_000.5, 1_800_000_061.0, 1_800_000_000.75):
        record = logging.makeLogRecord({"msg": "m", "levelname": "INFO"})
        record.created, record.msecs = created, (created % 1) * 1000
        stamps.append(json.loads(formatter.format(record))["ts"])
    assert stamps == ["2027-01-15T08:00:00.250Z", "2027-01-15T08:00:00.500Z",
                      "2027-01-15T08:01:01.000Z", "2027-01-15T08:00:00.750Z"]
