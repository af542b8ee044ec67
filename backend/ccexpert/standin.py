"""A stand-in model for benchmarks: the whole CaptionEngine path (checks, preparation, prefetch, normalisation on
the device, decoding of tokens, confidences) with `generate` replaced by a fixed wait per batch, as a GPU that
takes that long would. It shows whether the CPU side keeps the device busy; it computes no caption."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import torch

from .engine import CaptionEngine
from .presets import build_tiny_tokenizer
from .processing_ccexpert import CCExpertProcessor

STANDIN_CAPTION = "a building is built on the bareland"


class StandInModel(torch.nn.Module):
    """`generate` waits `seconds_per_batch` (whatever the batch size, like a GPU below saturation) and returns
    the tokens of :data:`STANDIN_CAPTION` then <|im_end|>, with flat logits (confidence = 1 / vocabulary)."""

    def __init__(self, seconds_per_batch: float, caption_ids: list[int], vocab_size: int, wait: Callable = time.sleep):
        super().__init__()
        if seconds_per_batch < 0:
            raise ValueError(f"seconds_per_batch must be >= 0, got {seconds_per_batch}")
        self.seconds_per_batch = seconds_per_batch
        self.caption_ids = caption_ids
        self.vocab_size = vocab_size
        self.wait = wait
        self.batches: list[int] = []  # the size of every batch generated, in order
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the module a device and dtype

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    def generate(self, input_ids, pixel_values, max_new_tokens: int, **_) -> SimpleNamespace:
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(f"pixel_values {tuple(pixel_values.shape)} do not fit {input_ids.shape[0]} prompts")
        self.batches.append(int(input_ids.shape[0]))
        self.wait(self.seconds_per_batch)
        tokens = torch.tensor(self.caption_ids[:max_new_tokens], device=input_ids.device).repeat(input_ids.shape[0], 1)
        logits = tuple(torch.zeros(input_ids.shape[0], self.vocab_size) for _ in range(tokens.shape[1]))
        return SimpleNamespace(sequences=torch.cat([input_ids, tokens], dim=1), logits=logits)

    def compute_transition_scores(self, sequences, scores, normalize_logits: bool = True) -> torch.Tensor:
        return torch.stack([torch.log_softmax(s.float(), dim=-1)[:, 0] for s in scores], dim=1)


class StandInEngine(CaptionEngine):
    """CaptionEngine over :class:`StandInModel`. The scaling and normalisation of the pixels is device work that a
    GPU does in a fraction of a millisecond; on a CPU "device" it would be charged to the same cores that prepare,
    so the stand-in leaves it to its fixed wait (the pixels stay uint8)."""

    def _model_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels


def standin_engine(
    seconds_per_batch: float, image_size: int = 384, max_batch: int = 32, prefetch: int = 2, wait: Callable = time.sleep
) -> StandInEngine:
    """A CaptionEngine over :class:`StandInModel` with a real processor (tiny tokenizer, `image_size` chips)."""
    tokenizer = build_tiny_tokenizer()
    processor = CCExpertProcessor(tokenizer, image_size=image_size)
    ids = tokenizer.encode(STANDIN_CAPTION, add_special_tokens=False) + [processor.im_end_id]
    model = StandInModel(seconds_per_batch, ids, len(tokenizer), wait)
    return StandInEngine(
        model,  # type: ignore[arg-type]  # the generate interface CaptionEngine uses, no network
        processor,
        model_name="stand-in",
        model_version=f"{seconds_per_batch * 1000:g} ms per batch",
        demo=True,
        max_batch=max_batch,
        prefetch=prefetch,
    )


__all__ = ["STANDIN_CAPTION", "StandInEngine", "StandInModel", "standin_engine"]
