"""The bad-input catalogue (issue 16): every kind of bad request, JSON and multipart, gets its 4xx and error code.

``CASES`` (module level, importable: ``bench/bench_reliability.py`` runs it against a live server) holds one
:class:`Case` per kind of bad request. The one parametrised test sends each to a real uvicorn server on
127.0.0.1 (``catalogue_server``: the pixel-echo engine, API keys on, small limits) and checks the status, the
error code, that the message names no exception class, that nothing was logged with a traceback, and that the
server still answers a good request afterwards.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from ccexpert.service import Settings, create_app
from ccexpert.service.auth import key_line
from PIL import Image
from service_helpers import EchoEngine, LogRecords, b64, png_bytes, raw_png, solid, thread_server

CHIP = 32
MAX_BATCH = 4
MAX_BODY = 512 * 1024
KEY = "catalogue-key"
GOOD_HEADERS = {"Authorization": f"Bearer {KEY}"}


@dataclass(frozen=True)
class Case:
    """One kind of bad request: ``request()`` gives the keyword arguments of ``requests.request`` (``method``,
    ``path`` and any of ``json``, ``data``, ``files``, ``headers``); the good key is added unless ``auth=False``."""

    id: str
    status: int
    code: str
    request: Callable[[], dict[str, Any]]
    auth: bool = True
    headers: dict[str, str] = field(default_factory=dict)


# -- chips ------------------------------------------------------------------------------------------------------------


def good_png(value: int = 1) -> bytes:
    return png_bytes(solid(value, CHIP))


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid(5, CHIP)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _truncated() -> bytes:
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (CHIP, CHIP, 3), dtype=np.uint8))
    return data[: len(data) // 2]


def _corrupt_idat() -> bytes:
    data = bytearray(png_bytes(np.random.default_rng(1).integers(0, 256, (CHIP, CHIP, 3), dtype=np.uint8)))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = b"\xff" * 40
    return bytes(data)


def _with_ihdr_byte(offset: int, value: int) -> bytes:
    """A PNG header whose IHDR byte ``offset`` (8: bit depth, 9: colour type) is ``value`` (CRC not fixed)."""
    data = bytearray(raw_png(CHIP, CHIP, sample=None))
    data[16 + offset] = value
    return bytes(data)


# -- request builders -------------------------------------------------------------------------------------------------


def pairs_body(*pairs: tuple[str, bytes, bytes], **extra: Any) -> dict:
    return {"pairs": [{"id": i, "before": b64(b), "after": b64(a)} for i, b, a in pairs], **extra}


def post_json(payload: Any) -> Callable[[], dict]:
    return lambda: {"method": "POST", "path": "/v1/captions", "json": payload() if callable(payload) else payload}


def post_chips(before: Callable[[], bytes], after: Callable[[], bytes] = good_png) -> Callable[[], dict]:
    return post_json(lambda: pairs_body(("p", before(), after())))


def post_raw(data: bytes | Callable[[], Any], content_type: str | None = "application/json") -> Callable[[], dict]:
    def build() -> dict:
        headers = {"Content-Type": content_type} if content_type else {}
        return {
            "method": "POST",
            "path": "/v1/captions",
            "data": data() if callable(data) else data,
            "headers": headers,
        }

    return build


def form(*pairs: tuple[str, bytes, bytes], **fields: str) -> list:
    parts: list = []
    for pair_id, before, after in pairs:
        parts += [
            ("id", (None, pair_id)),
            ("before", ("b.png", before, "image/png")),
            ("after", ("a.png", after, "image/png")),
        ]
    parts += [(name, (None, value)) for name, value in fields.items()]
    return parts


def post_form(parts: Callable[[], list]) -> Callable[[], dict]:
    return lambda: {"method": "POST", "path": "/v1/captions", "files": parts()}


def good_pair(pair_id: str = "p") -> tuple[str, bytes, bytes]:
    return pair_id, good_png(1), good_png(2)


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 65536
        sent += 65536


CASES: list[Case] = [
    # JSON: the chips
    Case("json_not_png_jpeg", 400, "not_png", post_chips(_jpeg)),
    Case("json_not_png_text", 400, "not_png", post_chips(lambda: b"hello, I am not an image")),
    Case("json_empty_image", 400, "not_png", post_chips(lambda: b"")),
    Case("json_signature_only", 400, "truncated_png", post_chips(lambda: b"\x89PNG\r\n\x1a\n")),
    Case("json_signature_then_garbage", 400, "truncated_png", post_chips(lambda: b"\x89PNG\r\n\x1a\n" + b"x" * 64)),
    Case("json_truncated_png", 400, "truncated_png", post_chips(_truncated)),
    Case("json_corrupt_idat", 400, "truncated_png", post_chips(_corrupt_idat)),
    Case("json_zero_width_header", 400, "truncated_png", post_chips(lambda: raw_png(0, CHIP, sample=None))),
    Case("json_bad_colour_type", 400, "truncated_png", post_chips(lambda: _with_ihdr_byte(9, 5))),
    Case("json_bad_bit_depth", 400, "truncated_png", post_chips(lambda: _with_ihdr_byte(8, 3))),
    Case(
        "json_wrong_size",
        400,
        "wrong_size",
        post_chips(lambda: png_bytes(solid(1, 16)), lambda: png_bytes(solid(1, 16))),
    ),
    Case("json_size_mismatch", 400, "size_mismatch", post_chips(good_png, lambda: png_bytes(solid(1, 16)))),
    Case(
        "json_bomb_100000x100000",
        400,
        "wrong_size",
        post_chips(lambda: raw_png(100_000, 100_000, sample=None), lambda: raw_png(100_000, 100_000, sample=None)),
    ),
    Case(
        "json_bomb_2gpx_by_1",
        400,
        "wrong_size",
        post_chips(lambda: raw_png(2**31 - 1, 1, sample=None), lambda: raw_png(2**31 - 1, 1, sample=None)),
    ),
    Case("json_bomb_vs_good", 400, "size_mismatch", post_chips(lambda: raw_png(100_000, 100_000, sample=None))),
    Case("json_rgba", 400, "wrong_bands", post_chips(lambda: png_bytes(np.zeros((CHIP, CHIP, 4), np.uint8)))),
    Case("json_grey", 400, "wrong_bands", post_chips(lambda: png_bytes(np.zeros((CHIP, CHIP), np.uint8)))),
    Case("json_grey_alpha", 400, "wrong_bands", post_chips(lambda: raw_png(CHIP, CHIP, 8, 4))),
    Case("json_palette", 400, "wrong_mode", post_chips(lambda: raw_png(CHIP, CHIP, 8, 3))),
    Case("json_rgb_16_bit", 400, "wrong_mode", post_chips(lambda: raw_png(CHIP, CHIP, 16, 2, sample=40000))),
    Case("json_grey_16_bit", 400, "wrong_mode", post_chips(lambda: raw_png(CHIP, CHIP, 16, 0, sample=40000))),
    Case("json_rgba_16_bit", 400, "wrong_mode", post_chips(lambda: raw_png(CHIP, CHIP, 16, 6, sample=40000))),
    Case("json_bilevel_1_bit", 400, "wrong_mode", post_chips(lambda: raw_png(CHIP, CHIP, 1, 0))),
    Case("json_bad_base64", 400, "bad_base64", post_json({"pairs": [{"id": "p", "before": "***", "after": "***"}]})),
    Case(
        "json_base64_with_newline",
        400,
        "bad_base64",
        post_json(
            lambda: {
                "pairs": [
                    {"id": "p", "before": b64(good_png())[:8] + "\n" + b64(good_png())[8:], "after": b64(good_png())}
                ]
            }
        ),
    ),
    Case("json_base64_non_ascii", 400, "bad_base64", post_json({"pairs": [{"id": "p", "before": "é", "after": "é"}]})),
    # JSON: the body
    Case("json_syntax_error", 400, "invalid_json", post_raw(b"{not json")),
    Case("json_empty_body", 400, "invalid_json", post_raw(b"")),
    Case("json_not_utf8", 400, "invalid_json", post_raw(b'{"pairs": "\xff\xfe"}')),
    Case(
        "json_nested_100k_deep", 400, "invalid_json", post_raw(b'{"pairs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    ),
    Case("json_nested_objects_50k_deep", 400, "invalid_json", post_raw(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)),
    Case(
        "json_int_5000_digits",
        400,
        "invalid_json",
        post_raw(lambda: b'{"pairs": [], "max_new_tokens": ' + b"7" * 5000 + b"}"),
    ),
    # issue 24: the pair cap before anything is built per element (a 2 MB array grew the server by 1.4 GiB)
    Case("json_pairs_200k_zeros", 422, "batch_too_large", post_raw(lambda: b'{"pairs": [' + b"0," * 200_000 + b"0]}")),
    Case(
        "json_pairs_100k_empty_objects",
        422,
        "batch_too_large",
        post_raw(lambda: b'{"pairs": [' + b"{}," * 100_000 + b"{}]}"),
    ),
    Case(
        "json_unknown_field_100k_strings",
        422,
        "batch_too_large",
        post_raw(lambda: b'{"pairs": [], "x": [' + b'"ab",' * 80_000 + b'"ab"]}'),
    ),
    Case("json_top_level_list", 422, "invalid_request", post_raw(b"[1, 2, 3]")),
    Case("json_top_level_null", 422, "invalid_request", post_raw(b"null")),
    Case("json_nan_pairs", 422, "invalid_request", post_raw(b'{"pairs": NaN}')),
    Case("json_pairs_not_a_list", 422, "invalid_request", post_json({"pairs": {"id": "p"}})),
    Case("json_missing_pairs", 422, "invalid_request", post_json({"max_new_tokens": 8})),
    Case("json_unknown_top_field", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), colour="red"))),
    Case(
        "json_unknown_pair_field",
        422,
        "invalid_request",
        post_json(lambda: {"pairs": [{**pairs_body(good_pair())["pairs"][0], "mask": "x"}]}),
    ),
    Case("json_missing_after", 422, "invalid_request", post_json({"pairs": [{"id": "p", "before": "AAAA"}]})),
    Case(
        "json_null_before",
        422,
        "invalid_request",
        post_json(lambda: {"pairs": [{"id": "p", "before": None, "after": b64(good_png())}]}),
    ),
    Case("json_id_with_space", 422, "invalid_request", post_json(lambda: pairs_body(good_pair("has space")))),
    Case("json_id_too_long", 422, "invalid_request", post_json(lambda: pairs_body(good_pair("x" * 129)))),
    Case("json_id_empty", 422, "invalid_request", post_json(lambda: pairs_body(good_pair("")))),
    Case("json_id_trailing_newline", 422, "invalid_request", post_json(lambda: pairs_body(good_pair("p\n")))),
    Case(
        "json_id_not_a_string",
        422,
        "invalid_request",
        post_json(lambda: {"pairs": [{"id": 5, "before": b64(good_png()), "after": b64(good_png())}]}),
    ),
    Case("json_empty_batch", 422, "empty_batch", post_json({"pairs": []})),
    Case(
        "json_batch_too_large",
        422,
        "batch_too_large",
        post_json(lambda: pairs_body(*[good_pair(f"p{i}") for i in range(MAX_BATCH + 1)])),
    ),
    Case("json_duplicate_id", 422, "duplicate_id", post_json(lambda: pairs_body(good_pair("same"), good_pair("same")))),
    Case("json_tokens_zero", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens=0))),
    Case("json_tokens_513", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens=513))),
    Case("json_tokens_huge", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens=10**30))),
    Case("json_tokens_string", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens="8"))),
    Case("json_tokens_true", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens=True))),
    Case("json_tokens_float", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens=8.5))),
    Case("json_tokens_negative", 422, "invalid_request", post_json(lambda: pairs_body(good_pair(), max_new_tokens=-1))),
    # size
    Case(
        "body_content_length_over_limit",
        413,
        "body_too_large",
        post_raw(lambda: b'{"pairs": [' + b" " * MAX_BODY + b"]}"),
    ),
    Case("body_chunked_over_limit", 413, "body_too_large", post_raw(lambda: _chunks(MAX_BODY + 65536))),
    # media type, method, path
    Case("media_text_plain", 415, "unsupported_media_type", post_raw(b"x", "text/plain")),
    Case("media_none", 415, "unsupported_media_type", post_raw(b"x", None)),
    Case("media_urlencoded", 415, "unsupported_media_type", post_raw(b"a=1", "application/x-www-form-urlencoded")),
    Case("method_get_captions", 405, "method_not_allowed", lambda: {"method": "GET", "path": "/v1/captions"}),
    Case("method_delete_info", 405, "method_not_allowed", lambda: {"method": "DELETE", "path": "/v1/info"}),
    Case("path_unknown", 404, "not_found", lambda: {"method": "GET", "path": "/v2/nothing"}),
    # keys
    Case("auth_missing", 401, "unauthorized", post_json(lambda: pairs_body(good_pair())), auth=False),
    Case(
        "auth_wrong_key",
        401,
        "unauthorized",
        post_json(lambda: pairs_body(good_pair())),
        auth=False,
        headers={"Authorization": "Bearer not-the-key"},
    ),
    Case(
        "auth_basic_scheme",
        401,
        "unauthorized",
        post_json(lambda: pairs_body(good_pair())),
        auth=False,
        headers={"Authorization": f"Basic {KEY}"},
    ),
    Case(
        "auth_empty_bearer",
        401,
        "unauthorized",
        post_json(lambda: pairs_body(good_pair())),
        auth=False,
        headers={"Authorization": "Bearer "},
    ),
    Case(
        "auth_check_wrong_key",
        401,
        "unauthorized",
        lambda: {"method": "GET", "path": "/v1/auth/check"},
        auth=False,
        headers={"Authorization": "Bearer nope"},
    ),
    Case(
        "auth_header_9_kib",
        431,
        "header_too_large",
        post_json(lambda: pairs_body(good_pair())),
        auth=False,
        headers={"Authorization": "Bearer " + "k" * 9 * 1024},
    ),
    Case(
        "headers_over_64_kib",
        431,
        "header_too_large",
        post_json(lambda: pairs_body(good_pair())),
        headers={f"X-Filler-{i}": "f" * 4000 for i in range(20)},
    ),
    # multipart
    Case("form_unknown_field", 422, "invalid_request", post_form(lambda: form(good_pair(), colour="red"))),
    Case(
        "form_counts_differ",
        422,
        "invalid_request",
        post_form(lambda: [("id", (None, "p")), ("before", ("b.png", good_png()))]),
    ),
    Case("form_bad_id", 422, "invalid_request", post_form(lambda: form(good_pair("has space")))),
    Case("form_id_trailing_newline", 422, "invalid_request", post_form(lambda: form(good_pair("p\n")))),
    Case(
        "form_id_as_file",
        422,
        "invalid_request",
        post_form(
            lambda: [("id", ("id.txt", b"p")), ("before", ("b.png", good_png())), ("after", ("a.png", good_png()))]
        ),
    ),
    Case(
        "form_before_not_a_file",
        422,
        "invalid_request",
        post_form(lambda: [("id", (None, "p")), ("before", (None, "plain text")), ("after", ("a.png", good_png()))]),
    ),
    Case("form_empty", 422, "empty_batch", post_form(lambda: [("max_new_tokens", (None, "8"))])),
    Case(
        "form_batch_too_large",
        422,
        "batch_too_large",
        post_form(lambda: form(*[good_pair(f"p{i}") for i in range(MAX_BATCH + 1)])),
    ),
    Case("form_duplicate_id", 422, "duplicate_id", post_form(lambda: form(good_pair("d"), good_pair("d")))),
    Case(
        "form_tokens_not_a_number", 422, "invalid_request", post_form(lambda: form(good_pair(), max_new_tokens="abc"))
    ),
    Case("form_tokens_zero", 422, "invalid_request", post_form(lambda: form(good_pair(), max_new_tokens="0"))),
    Case("form_tokens_513", 422, "invalid_request", post_form(lambda: form(good_pair(), max_new_tokens="513"))),
    Case(
        "form_tokens_10_pow_30",
        422,
        "invalid_request",
        post_form(lambda: form(good_pair(), max_new_tokens=str(10**30))),
    ),
    Case("form_tokens_signed", 422, "invalid_request", post_form(lambda: form(good_pair(), max_new_tokens="+8"))),
    Case("form_tokens_underscore", 422, "invalid_request", post_form(lambda: form(good_pair(), max_new_tokens="8_0"))),
    Case(
        "form_tokens_arabic_digits",
        422,
        "invalid_request",
        post_form(lambda: form(good_pair(), max_new_tokens="\u0668")),
    ),
    Case(
        "form_tokens_twice",
        422,
        "invalid_request",
        post_form(lambda: form(good_pair()) + [("max_new_tokens", (None, "8")), ("max_new_tokens", (None, "9"))]),
    ),
    Case("form_not_png", 400, "not_png", post_form(lambda: form(("p", _jpeg(), good_png())))),
    Case(
        "form_rgb_16_bit",
        400,
        "wrong_mode",
        post_form(lambda: form(("p", raw_png(CHIP, CHIP, 16, 2, sample=40000), good_png()))),
    ),
    Case(
        "form_bomb",
        400,
        "wrong_size",
        post_form(lambda: form(("p", raw_png(10**5, 10**5, sample=None), raw_png(10**5, 10**5, sample=None)))),
    ),
    Case(
        "form_wrong_size",
        400,
        "wrong_size",
        post_form(lambda: form(("p", png_bytes(solid(1, 16)), png_bytes(solid(1, 16))))),
    ),
    Case("form_no_boundary", 400, "invalid_multipart", post_raw(b"--x\r\n", "multipart/form-data")),
    Case(
        "form_too_many_parts",
        400,
        "invalid_multipart",
        post_form(lambda: [("id", (None, f"p{i}")) for i in range(4097)]),
    ),
]

NO_EXCEPTION_NAMES = re.compile(r"\b\w*(Error|Exception|Traceback)\b")


def catalogue_settings(keys_file: Path) -> Settings:
    return Settings(
        api_keys_file=keys_file,
        max_batch=MAX_BATCH,
        max_body_bytes=MAX_BODY,
        max_new_tokens=32,
        body_timeout_s=10,
        max_wait_ms=1,
    )


@contextmanager
def catalogue_server() -> Iterator[str]:
    """The server the catalogue expects: pixel-echo engine, CHIP px chips, the key ``KEY``; yields its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.txt"
        keys.write_text(key_line(KEY, "catalogue") + "\n", encoding="utf-8")
        keys.chmod(0o600)
        with thread_server(create_app(catalogue_settings(keys), EchoEngine(chip_size=CHIP))) as url:
            yield url


def send(url: str, case: Case, session: requests.Session | None = None, timeout: float = 30) -> requests.Response:
    spec = dict(case.request())
    method, path = spec.pop("method"), spec.pop("path")
    headers = {**(GOOD_HEADERS if case.auth else {}), **spec.pop("headers", {}), **case.headers}
    return (session or requests).request(method, url + path, headers=headers, timeout=timeout, **spec)


def check(case: Case, response: requests.Response) -> list[str]:
    """What is wrong with ``response`` as the answer to ``case`` (empty: right)."""
    problems = []
    if response.status_code != case.status:
        problems.append(f"status {response.status_code}, expected {case.status}: {response.text[:200]}")
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return [*problems, f"not an error body: {response.text[:200]!r}"]
    if error.get("code") != case.code:
        problems.append(f"code {error.get('code')!r}, expected {case.code!r}")
    if NO_EXCEPTION_NAMES.search(str(error.get("message", ""))):
        problems.append(f"message names an exception: {error.get('message')!r}")
    if case.status == 405 and not response.headers.get("Allow"):
        problems.append("405 without Allow")
    if case.status == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
        problems.append("401 without WWW-Authenticate: Bearer")
    return problems


@pytest.fixture(scope="module")
def catalogue():
    with catalogue_server() as url:
        yield url


def test_catalogue_has_at_least_45_distinct_kinds():
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)
    assert {c.status for c in CASES} >= {400, 401, 404, 405, 413, 415, 422, 431}
    assert sum("form" in c.id for c in CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_gets_its_4xx_and_code(catalogue, case):
    with LogRecords() as logs:  # the good request after it also waits out anything logged late about this one
        response = send(catalogue, case)
        good = requests.post(
            catalogue + "/v1/captions",
            headers=GOOD_HEADERS,
            timeout=30,
            json=pairs_body(("ok", good_png(3), good_png(4))),
        )
    assert not check(case, response), check(case, response)
    assert not logs.tracebacks(), logs.tracebacks()
    assert good.status_code == 200 and json.loads(good.text)["results"][0]["caption"] == "before 3 after 4"
