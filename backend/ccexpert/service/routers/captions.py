"""``POST /v1/captions``: a batch of chip pairs (base64 PNG in JSON, or multipart files) -> one result per id.

The route documents the request (``schemas``), admits the caller before reading a byte of the body
(``CaptionServing.admit``: readiness, the key's quota), reads the body into a typed batch (``protocol``) and hands
it to ``CaptionServing.create_captions``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..auth import Caller, require_key
from ..protocol import read_caption_batch
from ..schemas import CAPTIONS_REQUEST_BODY, ERROR_RESPONSES, CaptionResponse
from ..serving import CaptionServing

router = APIRouter(prefix="/v1", tags=["captions"])


@router.post(
    "/captions",
    response_model=CaptionResponse,
    responses=dict(ERROR_RESPONSES),
    openapi_extra=CAPTIONS_REQUEST_BODY,
    summary="Caption what changed in each chip pair",
)
async def post_captions(request: Request, caller: Caller = Depends(require_key)) -> JSONResponse:
    serving: CaptionServing = request.app.state.serving
    async with serving.admit(caller):
        batch = await read_caption_batch(request, serving.state.settings.max_batch)
        request.state.pairs = len(batch.ids)
        return JSONResponse(await serving.create_captions(batch, caller))
