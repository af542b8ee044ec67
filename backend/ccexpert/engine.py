"""Batched change captioning: the one inference path used by the CLI, the HTTP service and `describe`.

Greedy decoding (or beam search) through `generate` on left-padded batches: padding is masked out, and the rotary
positions are relative (a row shifted by its padding attends the same), so a pair gets the same caption whatever
batch it is in (tested with prompts of different lengths). Confidence = exp(mean log-probability of the generated
tokens, <|im_end|> included), from the model's raw logits. `CaptionEngine.from_pretrained` also loads general
two-image VLMs (`ccexpert.general_vlm`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import torch

from .caption_text import tidy_caption
from .engine_api import CaptionResult, EngineInfo, resolve_device, resolve_dtype
from .modeling_ccexpert import CCExpertForConditionalGeneration
from .nochange import is_no_change
from .prefetch import DEFAULT_DEPTH, default_workers, prefetched, worker_pool
from .processing_ccexpert import CCExpertProcessor, normalize_pixels

DEFAULT_MAX_BATCH = 8  # CPU; on a GPU `from_pretrained` defaults to GPU_MAX_BATCH
GPU_MAX_BATCH = 32


class CaptionEngine:
    """Captions before/after pairs with a CCExpert model; `caption()` splits big inputs into `max_batch` chunks."""

    wording = "tile"  # caption_text.tidy_caption: "tile" for the layer, "scene" to score against LEVIR-CC references

    def __init__(
        self,
        model: CCExpertForConditionalGeneration,
        processor: CCExpertProcessor,
        *,
        model_name: str = "ccexpert",
        model_version: str = "unknown",
        demo: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
        chip_size: int | None = None,
        gsd_m: float | None = None,
        prefetch: int = DEFAULT_DEPTH,
    ):
        """`prefetch`: chunks prepared ahead while one generates, when an input spans several (0 = one by one)."""
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        default_workers()  # a bad CCEXPERT_PREP_WORKERS fails the load, not the first big request
        self.prefetch = prefetch
        self.model = model.eval()
        self.gsd_m = gsd_m  # the training imagery's metres per pixel (model card), for the clients' pixel-size check
        self.processor = processor
        self.model_name = model_name
        self.model_version = model_version
        self.demo = demo
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        # the chip clients should cut: the model card's when given, else the model's input size (384 for CCExpert)
        chip_size = processor.image_size if chip_size is None else chip_size
        if isinstance(chip_size, bool) or not isinstance(chip_size, int) or chip_size < 1:
            raise ValueError(f"chip_size must be a positive integer, got {chip_size!r}")
        self.chip_size = chip_size

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path | None = None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        max_batch: int | None = None,
    ):
        """Load a checkpoint folder or hub id (None = `ccexpert.paths.default_model_dir()`); safetensors only.

        A CCExpert checkpoint gives a CaptionEngine; a general two-image VLM (LLaVA-OneVision in HF format,
        Qwen2-VL, Qwen2.5-VL) gives a :class:`ccexpert.general_vlm.GeneralVLMEngine` with the same interface.
        `max_batch` pairs go through one `generate` call (default 8 on CPU, 32 on a GPU).
        """
        from .checkpoints import load_model, resolve_checkpoint
        from .general_vlm import GENERAL_FAMILIES, GeneralVLMEngine, model_family
        from .model_card import read_model_card
        from .paths import default_model_dir

        source = default_model_dir() if model is None else model
        # a hub id -> its snapshot in the Hugging Face cache
        folder = resolve_checkpoint(source, model_types=("ccexpert", *GENERAL_FAMILIES))
        device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device)
        card = read_model_card(folder)
        max_batch = max_batch or (GPU_MAX_BATCH if device.type == "cuda" else DEFAULT_MAX_BATCH)
        if model_family(folder) in GENERAL_FAMILIES:
            return GeneralVLMEngine.from_pretrained(
                folder, device, torch_dtype, max_batch, model_name=Path(str(source)).name, card=card
            )
        ccexpert = load_model(folder, dtype=torch_dtype, device=device)
        processor = CCExpertProcessor.from_pretrained(folder)
        return cls(
            ccexpert,
            processor,
            model_name=card.get("model_name", Path(str(source)).name),
            model_version=card.get("model_version", "unknown"),
            demo=bool(card.get("demo", False)),
            max_batch=max_batch,
            chip_size=card.get("chip_size"),
            gsd_m=card.get("gsd_m"),
        )

    @property
    def device(self) -> torch.device:
        return self.model.device

    def info(self) -> EngineInfo:
        return EngineInfo(
            model_name=self.model_name,
            model_version=self.model_version,
            chip_size=self.chip_size,
            device=str(self.device),
            dtype=str(self.model.dtype).removeprefix("torch."),
            max_batch=self.max_batch,
            demo=self.demo,
            family="ccexpert",
            change_expert=True,
            gsd_m=self.gsd_m,
        )

    def caption(
        self,
        pairs: Sequence[tuple],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        *,
        min_new_tokens: int = 0,
        context: str | None = None,
    ) -> list[CaptionResult]:
        """Caption each (before, after) pair; results in input order. Bad images raise ValueError before any work.
        `context` (a run's note) is accepted and ignored: CCExpert was trained on one fixed prompt (info:
        ``uses_context`` False).

        <|im_end|> is suppressed until `min_new_tokens` (at least 1) tokens exist: a caption is never empty, even for
        a chip far from the training data (mostly nodata fill) where ending at once is the greedy choice. Benchmarks
        set it to `max_new_tokens` for fixed-length runs.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        pairs = self.processor.validate(pairs)  # every image checked before any work
        chunks = list(_chunks(pairs, self.max_batch))
        results: list[CaptionResult] = []
        # one chunk: nothing to overlap with; more: chunk k+1 is prepared while chunk k generates
        overlap = len(chunks) > 1 and self.prefetch > 0
        prepared = prefetched(chunks, self.prepare_chunk, self.prefetch) if overlap else map(self.prepare_chunk, chunks)
        for batch in prepared:
            results.extend(self._generate(batch, max_new_tokens, num_beams, min_new_tokens))
        return results

    def prepare_chunk(self, chunk: tuple[int, Sequence[tuple]]) -> dict[str, torch.Tensor]:
        """(first index, checked pairs) -> :meth:`prepare` of the pairs."""
        return self.prepare(chunk[1], first_index=chunk[0])

    def prepare(
        self, pairs: Sequence[tuple], first_index: int = 0, *, context: str | None = None
    ) -> dict[str, torch.Tensor]:
        """The CPU half of a batch: the cached prompt rows and uint8 pixels, a [B, 2, 3, S, S] view of a channels-last
        buffer filled by memcpy pair by pair in the shared worker pool (pinned on a GPU, so the copy to the device
        is asynchronous; `.to(device)` keeps the strides, so it is one flat copy). Scaling and normalisation happen
        on the device in :meth:`_generate`; the result equals the processor's float batch. `context` is ignored,
        as in :meth:`caption`."""
        size = self.processor.image_size
        pixels = torch.empty((len(pairs), 2, size, size, 3), dtype=torch.uint8, pin_memory=self.device.type == "cuda")
        out = pixels.numpy()

        def fill(index: int) -> None:
            self.processor.pixels_uint8(pairs[index : index + 1], first_index + index, out=out[index : index + 1])

        if len(pairs) == 1:
            fill(0)
        else:
            list(worker_pool().map(fill, range(len(pairs))))  # list(): raises the first pair's error, in order
        return {**self.processor.prompt_batch(len(pairs)), "pixel_values": pixels.permute(0, 1, 4, 2, 3)}

    def generate_prepared(
        self, batch: dict[str, torch.Tensor], max_new_tokens: int = 64, num_beams: int = 1, *, min_new_tokens: int = 0
    ) -> list[CaptionResult]:
        """The device half: captions for a batch from :meth:`prepare` (the service's batcher prepares the next
        batch in another thread meanwhile)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        return self._generate(batch, max_new_tokens, num_beams, min_new_tokens)

    def _model_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels on the device -> the model's input: uint8 from :meth:`prepare` scaled and normalised here (on a
        GPU, a fraction of a millisecond), float from the processor cast to the model's dtype."""
        if pixels.dtype == torch.uint8:
            return normalize_pixels(pixels, self.model.dtype)
        return pixels.to(self.model.dtype)

    @torch.inference_mode()
    def _generate(self, batch: dict, max_new_tokens: int, num_beams: int, min_new_tokens: int) -> list[CaptionResult]:
        """Generate for a prepared batch: uint8 pixels from :meth:`prepare`, or the processor's float pixels."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        batch["pixel_values"] = self._model_pixels(batch["pixel_values"])
        prompt_length = batch["input_ids"].shape[1]
        eos = self.processor.im_end_id
        out = self.model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max(1, min_new_tokens),
            do_sample=False,
            num_beams=num_beams,
            eos_token_id=eos,
            pad_token_id=self.processor.pad_token_id,
            output_scores=True,
            output_logits=True,  # the model's own distribution, before min_new_tokens masks <|im_end|>
            return_dict_in_generate=True,
            length_penalty=1.0,
            early_stopping=True if num_beams > 1 else None,
        )
        new_tokens = out.sequences[:, prompt_length:]  # [B, T]
        if num_beams > 1:
            # sequences_scores = sum of token log-probs / length (length_penalty 1.0) = mean token log-prob
            mean_logprob = out.sequences_scores.float().tolist()
        else:
            token_logprob = self.model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
            mean_logprob = None
        results = []
        for row, tokens in enumerate(new_tokens.tolist()):
            length = tokens.index(eos) + 1 if eos in tokens else len(tokens)
            restart = caption_restart(tokens[:length], self._starts_word)
            length = min(length, restart)
            score = mean_logprob[row] if mean_logprob else token_logprob[row, :length].float().mean().item()
            caption = self.processor.decode(tokens[:length])
            if restart < len(tokens):  # the words that were to join the second caption go with it
                caption = _DANGLING.sub("", caption) or caption
            caption = tidy_caption(caption, cut=eos not in tokens and restart == len(tokens), wording=self.wording)
            confidence = min(1.0, max(0.0, math.exp(score)))
            results.append(CaptionResult(caption, confidence, not is_no_change(caption), length))
        return results

    def _starts_word(self, token_id: int) -> bool:
        """Whether a token begins a new word with its own space (byte-level BPE: "Ġ" prefix; SentencePiece: "▁")."""
        # one id in, one token (None for an id outside the vocabulary) out; the base class types it `str | list[str]`
        piece = cast(str | None, self.processor.tokenizer.convert_ids_to_tokens(token_id)) or ""
        return piece.startswith(("Ġ", "▁", " "))


_DANGLING = re.compile(r"(?:[\s,]+(?:and|while|but|as well as|then)?)+$")


def caption_restart(tokens: Sequence[int], starts_word) -> int:
    """Where the model starts its caption again without ending the first one, or len(tokens).

    A caption's first token carries no space; when the model, instead of ending, writes that same opening again
    (its first two tokens, the first without a space), the decoded text glues two captions ("... of the scenea road
    is built ..."). The caption ends before the restart. A repeated phrase inside a sentence has its spaces and is
    kept ("a house is built and a house is removed")."""
    if len(tokens) < 4 or starts_word(tokens[0]) or tokens[0] == tokens[1]:  # a run of one token is no opening
        return len(tokens)
    for position in range(2, len(tokens) - 1):
        if tokens[position] == tokens[0] and tokens[position + 1] == tokens[1]:
            return position
    return len(tokens)


def _chunks(items: list, size: int) -> Iterator[tuple[int, list]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


__all__ = ["CaptionEngine", "CaptionResult", "caption_restart", "resolve_device", "resolve_dtype"]
