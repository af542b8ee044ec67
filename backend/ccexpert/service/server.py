"""Running the service under uvicorn as ``ccexpert serve`` does (issue 24): :func:`run_service` -> exit code.

- the port is bound before anything starts: a port in use is one line and exit 2 (bad configuration), not a
  traceback and the "model cannot serve" code;
- HTTP/1.1 is parsed by h11 with its incomplete-event limit at :data:`HEADER_READ_LIMIT`: the header block is
  capped *while it is read* (httptools reads one endless header line forever); a block over it gets h11's
  plain-text 400 and the connection is closed, one under it and over ``MAX_HEADER_BYTES`` the JSON 431;
- SIGTERM/SIGINT: uvicorn stops accepting and waits ``shutdown_grace_s`` for the requests in flight;
  ``ServiceState.begin_shutdown`` answers those still waiting 503 ``shutting_down`` (JSON, Retry-After) just
  before it ends; a second SIGINT forces the exit. The exit code is 0 (a stop asked for), 3 when the model cannot
  serve: uvicorn's re-raising of the signal (exit 143/130) is not used.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Generator
from typing import Any

import uvicorn

from .app import create_app
from .middleware import MAX_HEADER_BYTES
from .settings import Settings

log = logging.getLogger("ccexpert.service")

HEADER_READ_LIMIT = 2 * MAX_HEADER_BYTES
EXIT_OK, EXIT_CONFIG, EXIT_MODEL = 0, 2, 3
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ListenError(ValueError):
    """The address cannot be listened on (in use, not this machine's, no permission)."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it); :class:`ListenError` with the reason."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart over TIME_WAIT
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn settings of the service (parser, header cap, graceful timeout, logging)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        http="h11",
        h11_max_incomplete_event_size=HEADER_READ_LIMIT,
        timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]  # a float is fine
    )


class ServiceServer(uvicorn.Server):
    """uvicorn's server that tells the app when a shutdown begins and exits with our code, not by the signal."""

    def __init__(self, app: Any, settings: Settings):
        super().__init__(uvicorn_config(app, settings))
        self.state = app.state.service
        self.grace_s = settings.shutdown_grace_s
        self.signalled = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        first = not self.should_exit
        super().handle_exit(sig, frame)
        self.signalled = True
        if first:
            self.state.begin_shutdown(self.grace_s)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """SIGINT/SIGTERM start a graceful shutdown; unlike uvicorn's, the signal is not raised again afterwards
        (that would make the exit code 143/130 instead of the documented 0)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_service(settings: Settings, engine: Any | None = None, err: Any = None) -> int:
    """``ccexpert serve`` without Ray: serve until SIGTERM/SIGINT (0) or until the model cannot serve (3); 2 for a
    bad configuration or an address that cannot be listened on. Problems go to ``err`` (stderr) as one line."""
    import sys

    err = err or sys.stderr
    failures: list[str] = []
    server: ServiceServer | None = None

    def stop(reason: str) -> None:  # the model cannot serve: stop, so that nothing mistakes this process for a backend
        failures.append(reason)
        if server is not None:
            server.should_exit = True

    try:
        app = create_app(settings, engine, on_failure=stop)
        sock = bind_socket(settings.host, settings.port)
    except ValueError as exc:
        print(f"ccexpert serve: {exc}", file=err)
        return EXIT_CONFIG
    server = ServiceServer(app, settings)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if failures:
        print(f"ccexpert serve: the model cannot serve captions, stopping: {failures[0]}", file=err)
        return EXIT_MODEL
    return EXIT_OK


__all__ = ["HEADER_READ_LIMIT", "ListenError", "ServiceServer", "bind_socket", "run_service", "uvicorn_config"]
