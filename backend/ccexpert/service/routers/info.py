"""``GET /v1/info``: what a client needs before sending chips (chip size, bands, limits, model)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..schemas import ERROR_RESPONSES, InfoResponse

router = APIRouter(prefix="/v1", tags=["captions"])


@router.get("/info", response_model=InfoResponse, responses={503: ERROR_RESPONSES[503]})
def info(request: Request) -> dict:
    return request.app.state.serving.info()
