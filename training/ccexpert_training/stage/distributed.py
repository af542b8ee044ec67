"""Process and device helpers of a stage: rank and world size, the torchrun/DeepSpeed environment, barriers, the
precision switch, and accelerate's process state for DeepSpeed on CPU."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from .errors import ConfigError


def world() -> tuple[int, int]:
    """(rank, world size): from torch.distributed when initialised, else from the launcher's environment."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_environment(use_deepspeed: bool) -> None:
    """Per-environment torch extension cache; a world of one when not launched by torchrun/deepspeed."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    if use_deepspeed and "RANK" not in os.environ:
        os.environ.update(
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(free_port()),
                "RANK": "0",
                "LOCAL_RANK": "0",
                "WORLD_SIZE": "1",
            }
        )


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def use_bf16(setting: str) -> bool:
    """``training.precision`` -> True for bf16. auto: bf16 on a GPU that supports it, fp32 on CPU."""
    import torch

    if setting == "auto":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if setting == "bf16" and not torch.cuda.is_available():
        raise ConfigError("training.precision=bf16 needs a GPU; use auto or fp32 on CPU")
    return setting == "bf16"


def cpu_deepspeed_state() -> bool:
    """DeepSpeed on CPU: set up accelerate's process state with gloo ourselves. TrainingArguments passes no backend
    on the DeepSpeed path, so accelerate finds no CPU backend and reports a world of ONE process although
    DeepSpeed initialised gloo with all of them (the batch-size check then fails)."""
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        state = PartialState(backend="gloo")
    finally:
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
    _, size = world()
    if state.num_processes != size:
        raise RuntimeError(f"accelerate sees {state.num_processes} processes, the launcher started {size}")
    return True
