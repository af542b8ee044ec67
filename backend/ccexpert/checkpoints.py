"""Checkpoints at run time: resolve (local folder or hub id), check, and load, safetensors only.

Converting official CCExpert weights and starting from LLaVA-OneVision are one-off steps: `convert_ccexpert`.

A CCExpert checkpoint folder holds `config.json`, `model.safetensors` (or shards + index), tokenizer files,
`generation_config.json` and optionally `model_card.json` (`model_name`, `model_version`, `demo`). Pickled weights
(`*.bin`, `*.pt`, ...) are never loaded: unpickling runs arbitrary code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import torch

from .configuration_ccexpert import CCExpertConfig
from .modeling_ccexpert import CCExpertForConditionalGeneration

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as it is; the message says what is wrong and where."""


def refuse_pickled_weights(folder: Path, remedy: str) -> None:
    """Raise, naming them, when ``folder`` holds pickled weight files (callers ask once no safetensors were found):
    they are never loaded, because unpickling runs code. The loader and the converter share this refusal; ``remedy``
    ends the message."""
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{folder} has only pickled weights ({', '.join(pickles)}); they are never loaded here because "
            f"unpickling runs code. {remedy}"
        )


def is_local(source: str | Path) -> bool:
    """A path (existing, or written like one) rather than a hub id such as "owner/name"."""
    text = str(source)
    return isinstance(source, Path) or Path(text).exists() or text.startswith(("/", ".", "~")) or text.count("/") > 1


def check_local_checkpoint(path: str | Path, model_types: tuple[str, ...] = (CCExpertConfig.model_type,)) -> Path:
    """Refuse a folder that is missing, not a checkpoint of one of `model_types` (CCExpert by default: the
    caption engine also takes general VLMs), or holds only pickled weights."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"no model at {path}; pass --model DIR (or set CCEXPERT_MODEL)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"no config.json in {path}; not a model folder")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type not in model_types:
        hint = (
            " (a LLaVA-OneVision checkpoint: start a CCExpert from it with `ccexpert convert --from-llava-onevision`)"
            if model_type == "llava_onevision"
            else " (an official CCExpert checkpoint? convert it with `ccexpert convert`)"
        )
        if len(model_types) > 1:
            hint = f" (supported: {', '.join(model_types)})"
        raise CheckpointError(f"{path} holds a {model_type!r} model, not {' or '.join(map(repr, model_types))}{hint}")
    if not (path / "model.safetensors").is_file() and not (path / "model.safetensors.index.json").is_file():
        refuse_pickled_weights(path, "Provide model.safetensors.")
        raise CheckpointError(f"no model.safetensors in {path}")
    return path


# What a hub checkpoint needs: pickled weights are never fetched (nor loaded).
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.md"]


def resolve_checkpoint(source: str | Path, model_types: tuple[str, ...] = (CCExpertConfig.model_type,)) -> Path:
    """A local checkpoint folder, checked; or a hub id ("owner/name"), fetched into (or, with HF_HUB_OFFLINE=1,
    found in) the Hugging Face cache and checked the same way. Config, tokenizer and model card are then read from
    one folder, so a hub model behaves exactly like its downloaded copy."""
    if is_local(source):
        return check_local_checkpoint(source, model_types)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id=str(source), allow_patterns=HUB_FILES)
    except HFValidationError as exc:
        raise CheckpointError(f"{source!r} is neither a model folder nor a hub id (owner/name): {exc}") from exc
    except LocalEntryNotFoundError as exc:
        raise CheckpointError(
            f"hub model {source} is not in the local Hugging Face cache and the hub cannot be reached (offline?): "
            "download it where there is network (`hf download ...`) and pass the folder, or fill the cache"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise CheckpointError(f"cannot fetch hub model {source}: {exc}") from exc
    return check_local_checkpoint(folder, model_types)


def load_model(
    source: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> CCExpertForConditionalGeneration:
    """Load a CCExpert checkpoint (local folder or hub id), safetensors only; refuse missing or unexpected weights."""
    folder = resolve_checkpoint(source)
    # output_loading_info=True makes it return (model, info); transformers types the return as the model alone
    model, info = cast(
        tuple[CCExpertForConditionalGeneration, dict[str, list]],
        CCExpertForConditionalGeneration.from_pretrained(
            str(folder), dtype=dtype, use_safetensors=True, output_loading_info=True
        ),
    )
    checked = ("missing_keys", "unexpected_keys", "mismatched_keys")
    problems = {k: sorted(v) for k, v in info.items() if k in checked and v}
    if problems:
        raise CheckpointError(f"{source} does not match the CCExpert architecture in its config.json: {problems}")
    # PreTrainedModel.to is decorated with functools.wraps, whose typeshed stub does not bind self
    return model.to(device).eval()  # type: ignore[arg-type]


__all__ = [
    "HUB_FILES",
    "PICKLE_SUFFIXES",
    "CheckpointError",
    "check_local_checkpoint",
    "is_local",
    "load_model",
    "refuse_pickled_weights",
    "resolve_checkpoint",
]
