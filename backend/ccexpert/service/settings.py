"""Service configuration: defaults < TOML file < ``CCEXPERT_*`` environment < command-line flags."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ENV_PREFIX = "CCEXPERT_"


class Settings(BaseModel):
    """Everything ``ccexpert serve`` can be told. Unknown keys are refused so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(None, description="checkpoint folder or hub id; None = the shipped demo model")
    device: str = "auto"
    dtype: str = "auto"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys_file: Path | None = Field(None, description="one 'sha256:<hex> [label]' per line (see auth.py)")
    insecure: bool = Field(False, description="allow a non-loopback bind without API keys")
    max_batch: int = Field(16, ge=1, description="most pairs in one request")
    device_batch: int = Field(8, ge=1, description="most pairs the engine runs at once")
    max_wait_ms: float = Field(10.0, ge=0, description="how long a device batch waits to fill up")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_concurrency: int = Field(32, ge=1, description="caption requests in flight; more get 429")
    max_concurrency_per_key: int | None = Field(
        None,
        ge=1,
        description="caption requests in flight per API key (per connection without keys); "
        "None = max(1, max_concurrency // 4)",
    )
    key_slot_wait_s: float = Field(
        1.0,
        ge=0,
        description="a request of a key at its in-flight limit waits this long (its body unread) for one of the "
        "key's requests to finish before it is answered 429",
    )
    body_timeout_s: float = Field(30.0, gt=0, description="the whole request body must arrive within this; else 408")
    request_timeout_s: float = Field(240.0, gt=0, description="longest wait for the engine's results; else 503")
    metrics_require_key: bool | None = Field(
        None, description="put /metrics behind the API key; None = only when keys are on and the bind is not loopback"
    )
    max_new_tokens: int = Field(64, ge=1, le=512, description="default and upper bound per request")
    shutdown_grace_s: float = Field(
        10.0,
        gt=0,
        description="after SIGTERM/SIGINT, requests in flight have this long to finish; those still waiting are "
        "answered 503 shutting_down (with Retry-After) just before it ends",
    )
    auth_failures_burst: int = Field(
        10, ge=1, description="wrong API keys one client address may send at once before it is throttled (429)"
    )
    auth_failures_per_s: float = Field(
        1.0, gt=0, description="wrong API keys per second one client address may keep sending once throttled"
    )
    log_level: str = "info"

    @property
    def per_key_limit(self) -> int:
        """Caption requests one key (or one connection without keys) may have in flight."""
        if self.max_concurrency_per_key is not None:
            return min(self.max_concurrency_per_key, self.max_concurrency)
        return max(1, self.max_concurrency // 4)

    @property
    def body_budget(self) -> int:
        """Bytes of request bodies held at once (being read or served): the memory bound of the old in-flight
        limit, now that a slot is taken only after the body is in."""
        return self.max_concurrency * self.max_body_bytes

    def metrics_protected(self, keys_enabled: bool) -> bool:
        if self.metrics_require_key is None:
            return keys_enabled and not self.is_loopback
        return self.metrics_require_key

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = environ[key]
    return values


def load_settings(
    toml_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the layers; ValueError names the bad key and its source."""
    values: dict[str, Any] = {}
    if toml_path is not None:
        path = Path(toml_path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"config file {path}: {exc}") from exc
        values.update(data.get("serve", data))
    values.update(_env_values(os.environ if environ is None else environ))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"bad service configuration: {problems}") from None
