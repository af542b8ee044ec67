"""Liveness (the process answers) and readiness (model loaded and warmed) as separate probes."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..schemas import ERROR_RESPONSES, StatusResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=StatusResponse)
def healthz() -> dict:
    return {"status": "alive"}


@router.get("/readyz", response_model=StatusResponse, responses={503: ERROR_RESPONSES[503]})
def readyz(request: Request):
    return request.app.state.serving.readiness()
