"""Liveness (the process answers) and readiness (model loaded and warmed) as separate probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..schemas import ERROR_RESPONSES, StatusResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=StatusResponse)
def healthz() -> dict:
    return {"status": "alive"}


@router.get("/readyz", response_model=StatusResponse, responses={503: ERROR_RESPONSES[503]})
def readyz(request: Request):
    service = request.app.state.service
    if service.ready:
        return {"status": "ready"}
    if service.load_error:  # it will not recover: no Retry-After
        body = {"error": {"code": "model_failed", "message": service.load_error, "id": None}}
        return JSONResponse(body, status_code=503)
    message = "model is loading or captioning its start-up sample"
    body = {"error": {"code": "not_ready", "message": message, "id": None}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
