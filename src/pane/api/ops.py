from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

from pane.api.deps import RuntimeDep
from pane.api.schemas import json_response
from pane.services import health

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process is up. Says nothing about its dependencies; see /readyz."""
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> Response:
    """Ready to serve: the database and Redis both answer. 503 names what does not."""
    checks = health.database_failure(runtime.database), health.redis_failure(runtime.redis)
    failures = [failure for failure in await asyncio.gather(*checks) if failure]
    if failures:
        return json_response(
            {"status": "unavailable", "failures": failures},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return json_response({"status": "ready"})


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics. With several API worker processes, all of them are aggregated."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
