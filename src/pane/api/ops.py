from __future__ import annotations

import asyncio
import os
from typing import Literal

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel, Field
from starlette.responses import PlainTextResponse, Response

from pane.api.deps import RuntimeDep
from pane.services import health

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    failures: list[str] = Field(
        default_factory=list, description="What does not answer (with 503)."
    )


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up. Says nothing about its dependencies; see /readyz."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model_exclude_unset=True,  # `failures` only with 503
    responses={503: {"model": Readiness, "description": "The database or Redis does not answer."}},
)
async def readyz(runtime: RuntimeDep, response: Response) -> Readiness:
    """Ready to serve: the database and Redis both answer. 503 names what does not."""
    checks = health.database_failure(runtime.database), health.redis_failure(runtime.redis)
    failures = [failure for failure in await asyncio.gather(*checks) if failure]
    if failures:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return Readiness(status="unavailable", failures=failures)
    return Readiness(status="ready")


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus metrics. With several API worker processes, all of them are aggregated."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
