"""Helpers for the service/client/describe tests: a pixel-echo engine, PNG encoding, real servers on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
import requests
from ccexpert.engine_api import EngineInfo
from PIL import Image
from rasterio.transform import Affine

REPO = Path(__file__).resolve().parents[2]
CRS_UTM = "EPSG:32633"
ORIGIN = (399_000.0, 5_700_000.0)


@dataclass(frozen=True)
class EchoResult:
    caption: str
    confidence: float
    changed: bool
    num_tokens: int


class EchoEngine:
    """Deterministic stand-in with the engine interface whose caption is computed from the pixels it got,
    so a lost, duplicated or mixed-up result is visible. Records every batch size."""

    def __init__(self, chip_size: int = 384, delay_per_pair: float = 0.0, fail_on: int | None = None):
        self.chip_size = chip_size
        self.delay = delay_per_pair
        self.fail_on = fail_on  # a before-image mean value that raises (a pair the engine cannot handle)
        self.batches: list[int] = []
        self.pairs_seen = 0
        self.lock = threading.Lock()

    def info(self) -> EngineInfo:
        return EngineInfo("echo", "1", chip_size=self.chip_size, device="cpu", dtype="float32", max_batch=8, demo=True)

    def caption(self, pairs, max_new_tokens: int = 64):
        with self.lock:
            self.batches.append(len(pairs))
            self.pairs_seen += len(pairs)
        time.sleep(self.delay * len(pairs))
        out = []
        for before, after in pairs:
            b, a = int(round(float(np.mean(before)))), int(round(float(np.mean(after))))
            if self.fail_on is not None and b == self.fail_on:
                raise ValueError(f"cannot caption a pair with before mean {b}")
            out.append(EchoResult(echo_caption(b, a), (b % 100) / 100.0, b != a, 3))
        return out


class TokenEchoEngine(EchoEngine):
    """:class:`EchoEngine` whose captions also name the ``max_new_tokens`` they were asked with, so a result given
    back to a call of another caption length is visible."""

    def caption(self, pairs, max_new_tokens: int = 64):
        from dataclasses import replace

        results = super().caption(pairs, max_new_tokens)
        return [replace(r, caption=f"{r.caption} tokens {max_new_tokens}") for r in results]


class NoteEngine(EchoEngine):
    """The echo engine that reads a note: its caption ends with the note it got, and it records each call's
    (pairs, note); ``uses_context`` as a general VLM's info says."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[int, str | None]] = []

    def info(self) -> EngineInfo:
        return EngineInfo("notes", "1", chip_size=self.chip_size, family="qwen2_5_vl", uses_context=True)

    def caption(self, pairs, max_new_tokens: int = 64, *, context: str | None = None):
        with self.lock:
            self.calls.append((len(pairs), context))
        return [replace(r, caption=f"{r.caption} | {context}") for r in super().caption(pairs, max_new_tokens)]


def echo_caption(before_mean: int, after_mean: int) -> str:
    return f"before {before_mean} after {after_mean}"


def solid(value: int | tuple[int, int, int], size: int = 384) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 120.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout} s")


@contextmanager
def thread_server(app):
    """uvicorn serving ``app`` on 127.0.0.1 (random port) in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60)
        yield url
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def thread_server_no_wait(app):
    """Like ``thread_server`` but yields as soon as the server answers ``/healthz`` (ready or not)."""
    import uvicorn

    @contextmanager
    def run():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for _ in range(100):
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.05)
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(20)
            sock.close()

    return run()


def serve_process(port: int, *args: str, log_path: Path | None = None) -> subprocess.Popen:
    """``ccexpert serve`` as a real process on 127.0.0.1:port."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccexpert.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *args,
        ],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


_SERVICE_SCRIPT = (
    "import json, sys; sys.path.insert(0, sys.argv[3]); "
    "from ccexpert.service import Settings; from ccexpert.service.server import run_service; "
    "from service_helpers import EchoEngine; "
    "sys.exit(run_service(Settings(**json.loads(sys.argv[1])), EchoEngine(**json.loads(sys.argv[2]))))"
)


def echo_service_process(
    port: int, settings: dict | None = None, engine: dict | None = None, log_path: Path | None = None
) -> subprocess.Popen:
    """The service with the pixel-echo engine, run by ``ccexpert serve``'s own ``run_service`` (uvicorn settings,
    signals, exit codes) as a real process on 127.0.0.1:port."""
    import json

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    values = {"host": "127.0.0.1", "port": port, "log_level": "warning", **(settings or {})}
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVICE_SCRIPT,
            json.dumps(values),
            json.dumps(engine or {}),
            str(REPO / "tests" / "backend"),
        ],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def metric_value(text: str, sample: str) -> float:
    """The value of one Prometheus sample line (``name{labels}`` exactly as exposed) in ``/metrics`` text."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(f"{sample} not in /metrics")


def write_tif(path: Path, array: np.ndarray, transform: Affine, crs: str = CRS_UTM, nodata=None) -> Path:
    bands, height, width = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=bands,
        dtype=array.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as dst:
        dst.write(array)
    return path


def blocks(size: int, chip: int = 384, seed: int = 0, dtype=np.uint8, scale: int = 1) -> np.ndarray:
    """A (3, size, size) image whose every chip-sized block has its own flat value (10, 20, 30, ...)."""
    n = -(-size // chip)
    values = (np.arange(n * n).reshape(n, n) + 1) * 10 * scale
    image = np.kron(values, np.ones((chip, chip), dtype=np.int64))[:size, :size]
    return np.repeat(image[None], 3, axis=0).astype(dtype)


def raw_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, sample: int | None = 0) -> bytes:
    """A PNG written byte by byte: any IHDR (a decompression bomb's header, 16-bit, palette...) with filter-0 rows
    of ``sample`` when ``sample`` is not None and the image is small, else a tiny IDAT (for header-only tests)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row_bytes = -(-width * channels * bit_depth // 8)
    if sample is not None and width * height <= 4096 * 4096:
        value = sample.to_bytes(2, "big") if bit_depth == 16 else bytes([sample & 0xFF])
        row = b"\0" + (value * (row_bytes // len(value) + 1))[:row_bytes]
        idat = zlib.compress(row * height)
    else:
        idat = zlib.compress(b"\0" * 64)
    extra = chunk(b"PLTE", bytes(range(3 * 16))) if colour_type == 3 else b""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class LogRecords:
    """Collects log records of the root and uvicorn loggers while a ``with`` block runs (servers in threads)."""

    def __init__(self):
        import logging

        self.records: list = []
        self.handler = logging.Handler(logging.DEBUG)
        self.handler.emit = self.records.append
        self.loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]

    def __enter__(self):
        for logger in self.loggers:
            logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        for logger in self.loggers:
            logger.removeHandler(self.handler)

    def tracebacks(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.exc_info]
