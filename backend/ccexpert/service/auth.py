"""Bearer API keys, stored as SHA-256 hashes and compared in constant time.

Keys file: one key per line, ``sha256:<64 hex> [label]`` (make a line with ``ccexpert serve --hash-key``);
blank lines and ``#`` comments are ignored. A bare key on a line is accepted for convenience but hashed at
load time, so no plaintext key stays in memory; the label (default: a hash prefix) names the client in
logs, metrics and for batching fairness.

The file must not be writable by group or others (whoever can write it can add a key): such a file is refused at
start, as ssh refuses a private key others can read. Fix it with ``chmod go-w FILE``.

Guessing is throttled (issue 24): each client address may present ``auth_failures_burst`` wrong keys, then one per
``1 / auth_failures_per_s`` seconds (:class:`AuthThrottle`); past that every key it presents, right or wrong, is
answered 429 ``auth_throttled`` with Retry-After, so guessing is no faster than the refill. ``--hash-key`` refuses
keys shorter than :data:`MIN_KEY_LENGTH` characters.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from .errors import ApiError


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


MIN_KEY_LENGTH = 16


def check_key_strength(key: str) -> None:
    """ValueError for a key too short to withstand guessing (``ccexpert serve --hash-key``)."""
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(
            f"an API key must have at least {MIN_KEY_LENGTH} characters (got {len(key)}); make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def key_line(key: str, label: str = "") -> str:
    """The keys-file line for ``key``."""
    if not key or key != key.strip():
        raise ValueError("an API key must be non-empty without surrounding spaces")
    return f"sha256:{hash_key(key)}" + (f" {label}" if label else "")


def check_permissions(path: Path) -> None:
    """ValueError when ``path`` is writable by its group or by others (POSIX only)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    writable = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if mode & bit]
    if writable:
        raise ValueError(
            f"API keys file {path} is writable by {' and '.join(writable)} (mode {stat.S_IMODE(mode):04o}): anyone "
            f"who can write it can add a key; refusing it. Run: chmod go-w {path}"
        )


@dataclass(frozen=True)
class KeyStore:
    """(digest, label) pairs; empty = auth disabled."""

    entries: tuple[tuple[bytes, str], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyStore:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            check_permissions(path)
        except OSError as exc:
            raise ValueError(f"API keys file {path}: {exc.strerror or exc}") from exc
        return cls.from_text(text, f"API keys file {path}")

    @classmethod
    def from_text(cls, text: str, source: str = "API keys") -> KeyStore:
        """The keys of a keys file's text (the Ray ingress gets the text, not the file); ``source`` names it in
        errors."""
        lines = text.splitlines()
        entries = []
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            token, _, label = line.partition(" ")
            if token.startswith("sha256:"):
                digest = token[len("sha256:") :].lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ValueError(f"{source}, line {number}: 'sha256:' needs 64 hex digits after it")
            else:
                digest = hash_key(token)
            entries.append((bytes.fromhex(digest), label.strip() or digest[:8]))
        if not entries:
            raise ValueError(f"{source} holds no key")
        return cls(tuple(entries))

    def identify(self, presented: str) -> str | None:
        """The label of the matching key, or None. Every stored digest is compared (constant time each,
        no early exit), so timing does not reveal which or how many keys exist."""
        candidate = hashlib.sha256(presented.encode("utf-8")).digest()
        found: str | None = None
        for digest, label in self.entries:
            if hmac.compare_digest(candidate, digest):
                found = label
        return found


@dataclass(frozen=True)
class Caller:
    """Who sent a request: ``key`` is the API key's label (None when auth is off); ``peer`` the connection."""

    key: str | None
    peer: str

    @property
    def fairness_id(self) -> str:
        """Batching shares device time per key, or per connection when auth is off."""
        return self.key or self.peer


class AuthThrottle:
    """Wrong API keys per client address: a bucket of ``burst`` tries refilled at ``per_s`` a second. Thread-safe
    (the key check runs in FastAPI's thread pool); ``clock`` is injectable for tests; at most ``max_clients``
    addresses are remembered (full buckets are forgotten first)."""

    def __init__(
        self, burst: int, per_s: float, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ):
        self.burst, self.per_s, self.clock, self.max_clients = float(burst), per_s, clock, max_clients
        self.buckets: dict[str, tuple[float, float]] = {}  # address -> (tries left, when)
        self.lock = threading.Lock()

    def _tries(self, address: str, now: float) -> float:
        tries, at = self.buckets.get(address, (self.burst, now))
        return min(self.burst, tries + (now - at) * self.per_s)

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try a key again (0: now)."""
        with self.lock:
            tries = self._tries(address, self.clock())
        return 0.0 if tries >= 1.0 else (1.0 - tries) / self.per_s

    def failed(self, address: str) -> None:
        """``address`` presented a wrong key."""
        with self.lock:
            now = self.clock()
            self.buckets[address] = (self._tries(address, now) - 1.0, now)
            if len(self.buckets) > self.max_clients:
                full = [a for a in self.buckets if self._tries(a, now) >= self.burst]
                for a in full or list(self.buckets)[: len(self.buckets) - self.max_clients]:
                    del self.buckets[a]


def require_key(request: Request) -> Caller:
    """FastAPI dependency: the caller; 401 with ``WWW-Authenticate: Bearer`` for a missing or wrong key, 429
    ``auth_throttled`` for an address that sent too many wrong keys."""
    store: KeyStore = request.app.state.keys
    client = request.client
    peer = f"{client.host}:{client.port}" if client else "unknown"
    if not store.enabled:
        return Caller(None, peer)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = client.host if client else "unknown"
    wait = throttle.retry_after(address)
    if wait > 0:
        raise ApiError(
            429,
            "auth_throttled",
            f"too many wrong API keys from {address}; retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    label = store.identify(token.strip())
    if label is None:
        throttle.failed(address)
        raise ApiError(401, "unauthorized", "wrong API key", headers=_CHALLENGE)
    request.state.key_label = label  # for the access log
    return Caller(label, peer)


_CHALLENGE = {"WWW-Authenticate": "Bearer"}
