"""A scripted HTTP server for the client's failure modes the real service cannot be made to show on demand
(429/503 bursts, another API version, a non-CCExpert server, a model that fails every batch). Runs in a
subprocess: ``python stub_backend.py PORT``, or in a thread with :func:`failing_backend`; the first path segment
picks the scenario."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INFO = {
    "api_version": "1",
    "model_name": "stub",
    "model_version": "0",
    "chip_size": 384,
    "bands": 3,
    "max_batch": 4,
    "max_body_bytes": 1 << 20,
    "device": "cpu",
    "dtype": "float32",
    "demo": True,
}
FAILURE = "TypeError: the model cannot caption (stub)"
HITS: Counter = Counter()
SEEN: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body, headers=None, raw: bool = False):
        data = body if raw else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html" if raw else "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        # read the whole request body before answering, as a real server does: closing the connection with the
        # body unread makes the kernel send a reset, which can destroy the answer before the client reads it (QGIS
        # then re-sends the request by itself: a 429's Retry-After was "ignored" 1 run in ~25, issue 30)
        self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scenario, _, path = self.path.lstrip("/").partition("/")
        HITS[self.path] += 1
        SEEN.append(
            {"path": self.path, "ua": self.headers.get("User-Agent", ""), "auth": self.headers.get("Authorization", "")}
        )
        if scenario == "seen":
            return self._send(200, {"requests": SEEN, "hits": HITS})
        if scenario.startswith("flaky") and HITS[self.path] <= 2:
            return self._send(503, {"error": {"code": "busy", "message": "warming up", "id": None}})
        if scenario.startswith("slowdown") and HITS[self.path] == 1:
            return self._send(
                429, {"error": {"code": "overloaded", "message": "too many", "id": None}}, {"Retry-After": "1"}
            )
        if scenario == "slow":
            time.sleep(3)
            return self._send(200, INFO)
        if scenario == "down":
            return self._send(502, {"error": {"code": "bad_gateway", "message": "proxy", "id": None}})
        if scenario == "v2" and path == "v1/info":
            return self._send(200, {**INFO, "api_version": "2"})
        if scenario == "failing" and path == "v1/captions":  # info is fine, every batch fails as the model does
            return self._send(
                503, {"error": {"code": "engine_error", "message": FAILURE, "id": None}}, {"Retry-After": "0"}
            )
        if scenario == "html":
            return self._send(200, b"<html>a web page</html>", raw=True)
        if path == "v1/info":
            return self._send(200, INFO)
        if path == "v1/captions":
            body = json.loads(self._body)
            SEEN[-1]["fields"] = sorted(body)  # what the client sent beside the pairs (max_new_tokens, context)
            SEEN[-1]["context"] = body.get("context")
            return self._send(
                200,
                {
                    "model": "stub",
                    "results": [
                        {
                            "id": p["id"],
                            "caption": "no change",
                            "confidence": 1.0,
                            "changed": False,
                            "status": "ok",
                            "error": None,
                            "timing_ms": 0,
                        }
                        for p in body["pairs"]
                    ],
                },
            )
        return self._send(404, {"error": {"code": "not_found", "message": self.path, "id": None}})

    do_GET = _route
    do_POST = _route

    def log_message(self, *args):
        pass


@contextmanager
def failing_backend():
    """(base URL, hits) of the "failing" scenario served from a thread: ``/v1/info`` answers, every caption batch
    gets 503 with :data:`FAILURE`; ``hits()`` counts the caption requests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/failing", lambda: HITS["/failing/v1/captions"]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def thread_stub():
    """The stub served from a thread of this process (its :data:`SEEN` readable directly): the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
