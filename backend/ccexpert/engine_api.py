"""The engine API: what every captioning engine (CaptionEngine, GeneralVLMEngine, Ray's ReplicaEngine, the
benchmark stand-in and the test stubs) offers the CLI, ``describe`` and the service, typed in one place.

- :class:`Engine`: ``caption(pairs, max_new_tokens, context=None)`` -> one :class:`CaptionResult` per pair,
  ``info()`` -> :class:`EngineInfo`. ``context`` is the run's note (``core.context``); engines whose info says
  ``uses_context`` read it (general VLMs, in their prompt), the others accept and ignore it (CCExpert's prompt is
  fixed). Callers pass it only when there is a note, so engines written before notes still work.
- :class:`EngineInfo`: frozen; also a read-only mapping with the keys of ``GET /v1/info``'s model part, so code that
  reads ``info["chip_size"]`` keeps working. :meth:`EngineInfo.to_wire` builds the ``/v1/info`` body (with the
  service's limits) with one rule for missing or odd values, :meth:`EngineInfo.of` accepts an engine's mapping
  (an older stub, a replica's info that crossed a process boundary).
- :func:`resolve_device` / :func:`resolve_dtype`: "auto" means the same everywhere (bf16 on a GPU that has it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, runtime_checkable

import torch
from ccexpert_changes.core.grid import DEFAULT_CHIP_SIZE

API_VERSION = "1"


@dataclass(frozen=True)
class CaptionResult:
    caption: str
    confidence: float  # exp(mean token log-probability), in [0, 1]
    changed: bool  # not a LEVIR-CC no-change phrasing
    num_tokens: int  # generated tokens, <|im_end|> included when reached

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)  # Mapping's equality: an EngineInfo equals the dict of the same items
class EngineInfo(Mapping):
    """What an engine says about itself. `prompt` only for prompted general VLMs (left out of the mapping when
    None, as the engines' dicts always did); `gsd_m` is the training imagery's metres per pixel (model card);
    `uses_context`: whether a context note changes its captions (False: ignored)."""

    model_name: str
    model_version: str = "unknown"
    chip_size: int = DEFAULT_CHIP_SIZE
    bands: int = 3
    device: str = "cpu"
    dtype: str = "float32"
    max_batch: int = 8
    demo: bool = False
    family: str = "ccexpert"
    change_expert: bool = True
    gsd_m: float | None = None
    prompt: str | None = None
    uses_context: bool = False

    def __post_init__(self) -> None:
        for name in ("chip_size", "bands", "max_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EngineInfo.{name} must be a positive integer, got {value!r}")

    @classmethod
    def of(cls, info: EngineInfo | Mapping[str, Any]) -> EngineInfo:
        """An engine's info as EngineInfo: itself, or a mapping read with one rule (absent keys take the defaults,
        values are coerced as ``/v1/info`` always did, unknown keys are ignored, a non-positive gsd_m is None)."""
        if isinstance(info, EngineInfo):
            return info
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in info.items() if k in known}
        for name, kind in (("model_name", str), ("model_version", str), ("device", str), ("dtype", str)):
            if name in values:
                values[name] = kind(values[name])
        values.setdefault("model_name", "unknown")
        for name in ("chip_size", "bands", "max_batch"):
            if name in values:
                values[name] = int(values[name])
        for name in ("demo", "change_expert", "uses_context"):
            if name in values:
                values[name] = bool(values[name])
        if "family" in values:
            values["family"] = str(values["family"])
        values["gsd_m"] = positive_or_none(values.get("gsd_m"))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.items())

    def to_wire(self, *, max_batch: int, max_body_bytes: int, max_in_flight: int) -> dict[str, Any]:
        """The ``GET /v1/info`` body: the model part and the service's own limits (its `max_batch` is the request
        limit, not the engine's device batch), keys in the documented order."""
        return {
            "api_version": API_VERSION,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "chip_size": self.chip_size,
            "bands": self.bands,
            "max_batch": max_batch,
            "max_body_bytes": max_body_bytes,
            "device": self.device,
            "dtype": self.dtype,
            "demo": self.demo,
            "family": self.family,
            "change_expert": self.change_expert,
            "max_in_flight": max_in_flight,
            "gsd_m": positive_or_none(self.gsd_m),
            "uses_context": self.uses_context,  # added by issue 27 item 7, last so older keys keep their order
        }

    # -- the read-only mapping (the engines' info dicts before EngineInfo) --------------------------------------
    def _keys(self) -> list[str]:
        return [f.name for f in fields(self) if not (f.name == "prompt" and self.prompt is None)]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


@runtime_checkable
class Engine(Protocol):
    """A captioning engine: one device (or a fan-out to replicas) behind `caption`; `info` says what it is."""

    def caption(
        self, pairs: Sequence[tuple[Any, Any]], max_new_tokens: int = 64, *, context: str | None = None
    ) -> list[CaptionResult]: ...

    def info(self) -> EngineInfo: ...


def positive_or_none(value: Any) -> float | None:
    """A ground sample distance (metres per pixel), None when it names none (absent, not a number, <= 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" = the GPU when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """ "auto" = bf16 on a GPU that supports it, else fp32 (CPU bf16 matmuls are slow and inexact)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, bf16, fp16 or fp32")
    return _DTYPES[dtype]


__all__ = [
    "API_VERSION",
    "CaptionResult",
    "Engine",
    "EngineInfo",
    "positive_or_none",
    "resolve_device",
    "resolve_dtype",
]
