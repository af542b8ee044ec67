"""The wire side of ``POST /v1/captions``: its body (JSON with base64 PNGs, or a multipart form) into a typed
:class:`CaptionBatch`, so that ``CaptionServing`` never sees a transport (as vLLM's serving classes get a typed
request).

The cheap bounds come before anything is built per element (issue 24): a JSON body holding more values than
``max_batch`` pairs can hold is refused (422 ``batch_too_large``) before it is parsed, so a 2 MB ``[0, 0, ...]``
costs a byte count, not a million validated objects; an integer literal too long for Python (over 4,300 digits) is
400 ``invalid_json``, not a server fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ccexpert_changes.core.context import check_context
from fastapi import Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from .errors import ApiError, format_validation
from .images import b64decode
from .schemas import MAX_NEW_TOKENS_LIMIT, MULTIPART_FIELDS, PAIR_ID_PATTERN, CaptionRequest

RawPairs = list[tuple[bytes, bytes]]

# a JSON string (escapes included): what is left outside them is the body's structure
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


@dataclass(frozen=True)
class CaptionBatch:
    """One caption request, transport-free: pair ids, raw PNG pairs (before, after), the caption length asked
    for (None: the server's default) and the run's context note (checked by ``check_context``; None: none)."""

    ids: list[str]
    pairs: RawPairs
    max_new_tokens: int | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.pairs):
            raise ValueError(f"{len(self.ids)} ids for {len(self.pairs)} pairs")


def check_batch(ids: list[str], max_batch: int) -> None:
    """1..max_batch pairs, each id once."""
    if not ids:
        raise ApiError(422, "empty_batch", "pairs is empty: send 1 to max_batch pairs")
    if len(ids) > max_batch:
        raise ApiError(422, "batch_too_large", f"{len(ids)} pairs is over max_batch {max_batch}")
    seen: set[str] = set()
    for pair_id in ids:
        if pair_id in seen:
            raise ApiError(422, "duplicate_id", f"pair id {pair_id!r} appears more than once", pair_id)
        seen.add(pair_id)


def max_json_commas(max_batch: int) -> int:
    """Commas a valid request of ``max_batch`` pairs can hold, with room to spare: 2 per pair object, one between
    pairs, one before ``max_new_tokens``, one before ``context``; a body with more is refused before it is
    parsed."""
    return 4 * max_batch + 8


def check_value_count(body: bytes, max_batch: int) -> None:
    """422 ``batch_too_large`` when the body holds more JSON values than ``max_batch`` pairs can. Every value past
    the first in an array or object needs a comma, so commas outside strings bound what ``json.loads`` would
    build; strings are skipped only when the raw count is already over (base64 has no commas: valid bodies pay one
    ``bytes.count``)."""
    limit = max_json_commas(max_batch)
    if body.count(b",") <= limit:
        return
    commas = _JSON_STRING.sub(b'""', body).count(b",")
    if commas > limit:
        raise ApiError(
            422,
            "batch_too_large",
            f"the body holds {commas + 1} or more JSON values: more than a request of max_batch {max_batch} pairs "
            "(each an object of id, before, after) can hold",
        )


async def read_caption_batch(request: Request, max_batch: int) -> CaptionBatch:
    """The body of ``request`` (read whole: ``RequestGuard`` bounds its size, deadline and memory) as a batch."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        return await run_in_threadpool(parse_json, body, max_batch)  # JSON + base64 of megabytes: off the loop
    if content_type == "multipart/form-data":
        return await _read_multipart(request)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"content-type {content_type or '(none)'}: send application/json or multipart/form-data",
    )


def parse_json(body: bytes, max_batch: int) -> CaptionBatch:
    """A JSON body (``CaptionRequest``) as a batch; the pair count is capped before anything is built per pair."""
    check_value_count(body, max_batch)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and int literals over 4,300 digits
        detail = str(exc) if isinstance(exc, json.JSONDecodeError) else "a number literal is too long"
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {detail}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "body is not valid JSON: nested too deeply") from None
    try:
        parsed = CaptionRequest.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", format_validation(exc.errors())) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "body nested too deeply") from None
    context = request_context(parsed.context)  # before megabytes of base64 are decoded
    ids = [p.id for p in parsed.pairs]
    raw = [(b64decode(p.before, p.id, "before"), b64decode(p.after, p.id, "after")) for p in parsed.pairs]
    return CaptionBatch(ids, raw, parsed.max_new_tokens, context)


def request_context(value: object) -> str | None:
    """A request's context note by the rule every way in shares (``core.context``), else 422 ``invalid_request``."""
    try:
        return check_context(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


async def _read_multipart(request: Request) -> CaptionBatch:
    try:
        form = await request.form(max_files=4096, max_fields=4096)
    except HTTPException as exc:  # starlette's MultiPartException: no boundary, too many parts, bad header
        raise ApiError(400, "invalid_multipart", f"multipart body cannot be parsed: {exc.detail}") from None
    try:
        return await parse_form(form)
    finally:
        await form.close()  # the spooled files


async def parse_form(form: FormData) -> CaptionBatch:
    """A multipart form (``id``/``before``/``after`` repeated, ``max_new_tokens``, ``context``) as a batch."""
    unknown = sorted(set(form.keys()) - MULTIPART_FIELDS)
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown form field(s): {', '.join(unknown)}")
    id_values = form.getlist("id")
    ids = [v for v in id_values if isinstance(v, str)]
    if len(ids) != len(id_values):
        raise ApiError(422, "invalid_request", "id fields must be plain form fields, not files")
    befores, afters = form.getlist("before"), form.getlist("after")
    if not (len(ids) == len(befores) == len(afters)):
        raise ApiError(
            422,
            "invalid_request",
            f"form has {len(ids)} id, {len(befores)} before and {len(afters)} "
            "after fields: send one of each per pair, in the same order",
        )
    for pair_id in ids:
        if not re.fullmatch(PAIR_ID_PATTERN, pair_id):
            raise ApiError(422, "invalid_request", f"id {pair_id[:40]!r} does not match {PAIR_ID_PATTERN}")
    raw: RawPairs = []
    for pair_id, b, a in zip(ids, befores, afters, strict=True):
        if not isinstance(b, UploadFile) or not isinstance(a, UploadFile):
            raise ApiError(422, "invalid_request", f"pair {pair_id!r}: before and after must be files", pair_id)
        raw.append((await b.read(), await a.read()))
    tokens = None
    if "max_new_tokens" in form:
        values = form.getlist("max_new_tokens")
        text = values[-1] if len(values) == 1 and isinstance(values[-1], str) else None
        # the JSON bounds: decimal digits only (no sign, spaces, underscores or other scripts' digits), 1..512
        if text is None or not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_NEW_TOKENS_LIMIT:
            raise ApiError(
                422,
                "invalid_request",
                f"max_new_tokens must be one integer from 1 to {MAX_NEW_TOKENS_LIMIT}, got {str(values[0])[:20]!r}",
            )
        tokens = int(text)
    context = None
    if "context" in form:
        notes = form.getlist("context")
        if len(notes) != 1 or not isinstance(notes[0], str):
            raise ApiError(422, "invalid_request", "context must be one plain form field (text, not a file)")
        context = request_context(notes[0])
    return CaptionBatch(ids, raw, tokens, context)


__all__ = ["CaptionBatch", "check_batch", "check_value_count", "parse_form", "parse_json", "read_caption_batch"]
