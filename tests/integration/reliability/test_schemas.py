"""Property-based runs (schemathesis) over the service's and the embedded backend's OpenAPI
schemas: no 5xx, and responses match what the schema documents.

Bounded: a few examples per operation, derandomised. LangServe's streaming endpoints and the
playground are left out: their responses are SSE/HTML that the schema does not describe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from app.service import create_app, discover_chains
from tests.integration.service.conftest import BACKEND_KEY, SERVICE_KEY, service_settings
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

EXAMPLES = 12
SKIPPED = ("/stream", "/stream_log", "/stream_events", "/playground")


def schema_conformance_except_langserve_422(ctx: Any, response: Any, case: Any) -> bool | None:
    """Response schema check, minus one known LangServe deviation.

    LangServe answers some 422s (e.g. "Number of configs (4) must match number of inputs (2)")
    with a string `detail`, where the FastAPI schema it generates documents a list.
    """
    if response.status_code == 422 and case.operation.path != "/feedback":
        return None
    return response_schema_conformance(ctx, response, case)


CHECKS = [not_a_server_error, schema_conformance_except_langserve_422, content_type_conformance]


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory,
                fake_llm: tuple[FakeOpenAI, str]) -> Iterator[str]:
    settings = service_settings(tmp_path_factory.mktemp("schemas"), fake_llm[1])
    # Every chain but /failing, whose model answers 500 by design (a 5xx, rightly).
    chains = [c for c in discover_chains(templates_dir=settings.templates_dir)
              if c.path != "/failing"]
    with serve_in_thread(create_app(settings, chains=chains)) as url:
        yield url


def _operations(schema_url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(schema_url)
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not any(part in operation.path for part in SKIPPED):
            found.append(operation)
    return found


def _run(operation: Any, base_url: str, headers: dict[str, str], checks: list[Any]) -> None:
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=30)

    check()


@pytest.mark.timeout(240)
def test_service_schema_holds(service_url: str) -> None:
    operations = _operations(f"{service_url}/openapi.json")
    paths = {op.path for op in operations}
    assert {"/example/invoke", "/example/batch", "/critique/invoke", "/extract/invoke",
            "/tools/batch", "/feedback"} <= paths
    for operation in operations:
        _run(operation, service_url, {"X-API-Key": SERVICE_KEY}, CHECKS)


@pytest.mark.timeout(240)
def test_backend_schema_holds(service_url: str) -> None:
    base = f"{service_url}/promptlayer"
    operations = _operations(f"{base}/openapi.json")
    assert len(operations) >= 10
    # The backend answers every validation error 400 (docs/PROMPTLAYER_API.md), which
    # FastAPI's generated schema does not list: status codes are checked by the no-5xx rule.
    for operation in operations:
        _run(operation, base, {"X-API-KEY": BACKEND_KEY},
             [not_a_server_error, content_type_conformance])

