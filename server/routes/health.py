"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from persistence import migrate
from persistence.db import ping
from persistence.errors import Unavailable
from server import metrics
from server.deps import ServicesDep
from server.errors import ErrorBody
from server.strict_json import StrictJSONRoute

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


NOT_READY = {503: {"model": ErrorBody, "description": "The database or the queue is down (see details)"}}


@router.get("/readyz", responses=NOT_READY)
def readyz(services: ServicesDep) -> dict[str, str]:
    """The database answers and is migrated, and the queue answers."""
    checks: dict[str, str] = {}
    try:
        ping(services.engine)
        current, head = migrate.current_revision(services.engine), migrate.head_revision()
        checks["database"] = "ok" if current == head else f"at revision {current}, expected {head}"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        checks["queue"] = "ok" if services.queue.ping() else "not running"
    except Exception as exc:
        checks["queue"] = f"unreachable: {type(exc).__name__}"
    if any(v != "ok" for v in checks.values()):
        raise Unavailable("not ready", details=checks)
    return {"status": "ok", **checks}


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(services: ServicesDep) -> Response:
    """Jobs by status and trace durations, in Prometheus' text format."""
    body = await run_in_threadpool(metrics.render, services.metrics)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
