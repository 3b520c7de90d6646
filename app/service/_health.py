"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.observability import metrics_response, record_delivery_stats
from app.service._probes import run_probes

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {}})
async def readyz(request: Request) -> Any:
    """Chains are built, and the registry and the model server answer right now."""
    prompts = getattr(request.app.state, "prompts", None)
    probes = getattr(request.app.state, "probes", None) or {}
    checks = {"chains": prompts is not None}
    checks.update(await run_probes(probes) if probes else {"registry": False, "model": False})
    status = 200 if all(checks.values()) else 503
    return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format; with several workers, the sum over all of them."""
    delivery = getattr(request.app.state, "delivery", None)
    if delivery is not None:
        record_delivery_stats(delivery.stats())  # fresh for this worker; others every 5 s
    return metrics_response(request.app.state.settings.metrics_dir)
