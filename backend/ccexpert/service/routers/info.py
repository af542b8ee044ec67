"""``GET /v1/info``: what a client needs before sending chips (chip size, bands, limits, model)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..errors import ApiError
from ..schemas import ERROR_RESPONSES, InfoResponse

router = APIRouter(prefix="/v1", tags=["captions"])


def service_info(service) -> dict:
    if service.load_error is not None:  # loaded perhaps, but cannot caption: nothing to advertise
        raise ApiError(503, "model_failed", service.load_error)
    if service.engine_info is None:
        raise ApiError(503, "not_ready", "model is loading", headers={"Retry-After": "5"})
    e = service.engine_info
    return {
        "api_version": "1",
        "model_name": str(e.get("model_name", "unknown")),
        "model_version": str(e.get("model_version", "unknown")),
        "chip_size": int(e.get("chip_size", 384)),
        "bands": int(e.get("bands", 3)),
        "max_batch": service.settings.max_batch,
        "max_body_bytes": service.settings.max_body_bytes,
        "device": str(e.get("device", "cpu")),
        "dtype": str(e.get("dtype", "float32")),
        "demo": bool(e.get("demo", False)),
        "family": str(e.get("family", "ccexpert")),
        "change_expert": bool(e.get("change_expert", True)),
    }


@router.get("/info", response_model=InfoResponse, responses={503: ERROR_RESPONSES[503]})
def info(request: Request) -> dict:
    return service_info(request.app.state.service)
