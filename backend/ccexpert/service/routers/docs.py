"""``GET /docs``: a self-contained page made from the OpenAPI schema (``service/docs.py``; Swagger UI and ReDoc
load from a CDN). Not in the schema itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..docs import render_docs

router = APIRouter()


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    state = request.app.state
    if getattr(state, "docs_page", None) is None:
        state.docs_page = render_docs(request.app.openapi())
    return HTMLResponse(state.docs_page)
