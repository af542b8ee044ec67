"""``GET /metrics`` in the Prometheus text format; behind the API key when ``metrics_require_key`` (default: only
when keys are on and the bind is not loopback)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..auth import require_key

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    if request.app.state.metrics_protected:
        require_key(request)
    return Response(generate_latest(request.app.state.service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
