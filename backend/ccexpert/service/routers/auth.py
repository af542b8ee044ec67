"""``GET /v1/auth/check``: does this key open the service? (clients check a key before a long run)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..auth import Caller, require_key
from ..schemas import AuthCheckResponse

router = APIRouter(prefix="/v1", tags=["auth"])


@router.get("/auth/check", response_model=AuthCheckResponse, summary="Check an API key")
def auth_check(caller: Caller = Depends(require_key)) -> dict:
    """200 with the key's label for a good key (``label`` null when the server has no keys); 401 ``unauthorized``
    for a missing or wrong key."""
    return {"status": "ok", "label": caller.key}
