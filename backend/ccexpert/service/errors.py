"""The one error shape of the API: ``{"error": {"code", "message", "id"}}`` with a 4xx/5xx status."""

from __future__ import annotations


class ApiError(Exception):
    """Raised anywhere in a request; the app turns it into the JSON error body (and counts it by code)."""

    def __init__(self, status: int, code: str, message: str, pair_id: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.pair_id = pair_id
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "id": self.pair_id}}


def format_validation(errors: list[dict]) -> str:
    """Pydantic errors as one line naming each bad field: ``pairs.0.colour: Extra inputs are not permitted``."""
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more
