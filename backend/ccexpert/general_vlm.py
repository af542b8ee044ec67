"""General two-image vision-language models beside CCExpert: LLaVA-OneVision (HF format, the CCExpert base without
the DIM) and Qwen2-VL / Qwen2.5-VL, behind the same engine interface (``caption``, ``info``) as
:class:`ccexpert.engine.CaptionEngine`, so ``serve``, ``caption``, ``predict`` and ``describe`` take them unchanged.

Out of its training domain (disaster imagery, other sensors) CCExpert collapses, while general VLMs prompted with
both images describe far more (see README, "Which model for which imagery"). They are not change experts: their
``/v1/info`` says so.

Both images go into one user message, before then after, followed by the change-captioning prompt
(:data:`DEFAULT_PROMPT`, overridable per call within :data:`MAX_PROMPT_CHARS`). A run's context note (issue 27 item
7, ``core.context``) is put before that prompt in the same text, as ``Context: <note>.`` and one space
(:func:`compose_prompt`): RSCC reports general VLMs given disaster context caption markedly better.

The checkpoint's own chat template, tokenizer and image processor are used, loaded directly: transformers'
processor classes for these families also build a video processor that needs torchvision, which this project does
not install. So the image placeholders the chat template writes are expanded here to as many tokens as the model
expects: LLaVA-OneVision's anyres count (base tile + the unpadded crops of the best pinpoint + one newline per crop
row: 1,485 for a 384 px chip with a 384 pinpoint), Qwen-VL's ``t * h * w / merge_size**2`` from ``image_grid_thw``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from ccexpert_changes.core.context import check_context
from ccexpert_changes.core.grid import DEFAULT_CHIP_SIZE
from PIL import Image

from .engine_api import CaptionResult, EngineInfo
from .nochange import is_no_change
from .prefetch import prefetched

LLAVA_FAMILIES = ("llava_onevision",)
QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl")
GENERAL_FAMILIES = LLAVA_FAMILIES + QWEN_FAMILIES
DEFAULT_PROMPT = (
    "The first image was taken before the second one, over the same place. In one sentence, describe what changed "
    "between them: buildings, roads, vegetation, water or damage that appeared or disappeared, and where. If nothing "
    "changed, answer: the scene is the same as before."
)
MAX_PROMPT_CHARS = 1000
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def model_family(folder: str | Path) -> str:
    """The `model_type` of a checkpoint folder's config.json."""
    return str(json.loads((Path(folder) / "config.json").read_text()).get("model_type"))


def check_prompt(prompt: str | None) -> str:
    """The prompt to use: the default, or a caller's within the limits (ValueError otherwise)."""
    if prompt is None:
        return DEFAULT_PROMPT
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt is {len(prompt)} characters, over the limit of {MAX_PROMPT_CHARS}")
    return prompt.strip()


def compose_prompt(prompt: str | None, context: str | None = None) -> str:
    """The text after the two images: ``check_prompt(prompt)``, preceded by ``Context: <note>. `` when there is a
    note (``check_context``: stripped, at most 300 characters; a note that already ends in ``.``, ``!`` or ``?`` gets
    no second full stop). ValueError for a bad prompt or note."""
    text = check_prompt(prompt)
    note = check_context(context)
    if note is None:
        return text
    return f"Context: {note}{'' if note.endswith(('.', '!', '?')) else '.'} {text}"


def _chat_template(folder: Path, tokenizer) -> str:
    for name in CHAT_TEMPLATE_FILES:
        path = folder / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    if tokenizer.chat_template:
        return tokenizer.chat_template
    raise ValueError(f"{folder} has no chat template ({' or '.join(CHAT_TEMPLATE_FILES)}, or in the tokenizer)")


def _best_pinpoint(size: tuple[int, int], pinpoints: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The (height, width) pinpoint that keeps the most of the image's resolution, then wastes the least."""
    height, width = size
    best: tuple[int, int] | None = None
    best_key: tuple[int, int] | None = None
    for ph, pw in pinpoints:
        scale = min(pw / width, ph / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        key = (effective, -(ph * pw - effective))
        if best_key is None or key > best_key:
            best, best_key = (int(ph), int(pw)), key
    if best is None:
        raise ValueError("the image processor lists no pinpoints (image_grid_pinpoints is empty)")
    return best


def llava_onevision_tokens(size: tuple[int, int], pinpoints, tile: int, grid: int, max_crops: int = 9) -> int:
    """Image tokens LLaVA-OneVision (anyres_max_N) uses for an image of `size` (height, width): the base tile
    (grid x grid), the crops of the best pinpoint without the padding the resize added, and a newline per row.
    Large crop grids are pooled down to about `max_crops` tiles."""
    height, width = size
    ph, pw = _best_pinpoint(size, pinpoints)
    rows, cols = grid * (ph // tile), grid * (pw // tile)
    if width / height > cols / rows:  # wider than the crop grid: rows of padding top and bottom
        rows -= 2 * ((rows - int(round(height * cols / width, 7))) // 2)
    else:
        cols -= 2 * ((cols - int(round(width * rows / height, 7))) // 2)
    ratio = math.sqrt(rows * cols / (max_crops * grid * grid))
    if ratio > 1.1:
        rows, cols = int(rows // ratio), int(cols // ratio)
    return grid * grid + rows * cols + rows


class GeneralVLMEngine:
    """Captions before/after pairs with a general VLM; same interface and result type as CaptionEngine."""

    def __init__(
        self,
        model,
        tokenizer,
        image_processor,
        family: str,
        chat_template: str,
        *,
        model_name: str,
        model_version: str = "unknown",
        chip_size: int = DEFAULT_CHIP_SIZE,
        max_batch: int = 8,
    ):
        if family not in GENERAL_FAMILIES:
            raise ValueError(f"unknown model family {family!r}; supported: {', '.join(GENERAL_FAMILIES)}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.image_processor = image_processor
        self.family = family
        self.chat_template = chat_template
        self.model_name, self.model_version = model_name, model_version
        self.chip_size = chip_size
        self.max_batch = max_batch
        config = model.config
        self.image_token = tokenizer.convert_ids_to_tokens(int(config.image_token_id))
        end = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self.stop_ids = sorted(
            {i for i in end if i is not None and i != tokenizer.unk_token_id}
            | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        device: torch.device,
        dtype: torch.dtype,
        max_batch: int,
        model_name: str | None = None,
        card: dict | None = None,
    ) -> GeneralVLMEngine:
        """Load a checkpoint folder as the hub ships it (safetensors only)."""
        from transformers import AutoModelForImageTextToText, AutoTokenizer, BaseImageProcessor

        folder = Path(folder)
        family = model_family(folder)
        image_processor: type[BaseImageProcessor]
        if family in LLAVA_FAMILIES:
            from transformers import LlavaOnevisionImageProcessorPil as image_processor
        elif family in QWEN_FAMILIES:
            from transformers import Qwen2VLImageProcessorPil as image_processor
        else:
            raise ValueError(f"{folder}: model type {family!r} is not one of {', '.join(GENERAL_FAMILIES)}")
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=dtype, use_safetensors=True)
        card = card or {}
        return cls(
            # PreTrainedModel.to is decorated with functools.wraps, whose typeshed stub does not bind self
            model.to(device),  # type: ignore[arg-type]
            tokenizer,
            image_processor.from_pretrained(str(folder)),
            family,
            _chat_template(folder, tokenizer),
            model_name=card.get("model_name", model_name or folder.name),
            model_version=card.get("model_version", "unknown"),
            chip_size=int(card.get("chip_size", DEFAULT_CHIP_SIZE)),
            max_batch=max_batch,
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
            demo=False,
            family=self.family,
            change_expert=False,
            gsd_m=None,  # a general model names no imagery it was made for
            prompt=DEFAULT_PROMPT,
            uses_context=True,
        )

    def caption(
        self,
        pairs: Sequence[tuple],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        *,
        min_new_tokens: int = 0,
        prompt: str | None = None,
        context: str | None = None,
    ) -> list[CaptionResult]:
        """Caption each (before, after) pair (HxWx3 uint8 arrays or PIL images); results in input order. `context`,
        a run's note, goes before the prompt (:func:`compose_prompt`)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        text = compose_prompt(prompt, context)
        images = [
            (self._image(b, f"pair {i}, before image"), self._image(a, f"pair {i}, after image"))
            for i, (b, a) in enumerate(pairs)
        ]
        chunks = [images[start : start + self.max_batch] for start in range(0, len(images), self.max_batch)]
        results: list[CaptionResult] = []
        # the checkpoint's own image processor normalises (and LLaVA crops, Qwen patchifies) on the CPU, so the
        # preparation stays there; with several chunks, chunk k+1 is prepared while chunk k generates
        prepare = partial(self._inputs, prompt=text)
        for batch in map(prepare, chunks) if len(chunks) == 1 else prefetched(chunks, prepare):
            results.extend(self._generate(batch, max_new_tokens, num_beams, min_new_tokens))
        return results

    def _image(self, image, where: str) -> Image.Image:
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
                raise ValueError(f"{where}: expected an HxWx3 uint8 array, got {image.dtype} {image.shape}")
            image = Image.fromarray(image)
        elif not isinstance(image, Image.Image):
            raise ValueError(f"{where}: expected an HxWx3 uint8 array or a PIL image, got {type(image).__name__}")
        image = image.convert("RGB")
        size = (self.chip_size, self.chip_size)
        return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)

    def _inputs(self, pairs: list[tuple[Image.Image, Image.Image]], prompt: str) -> dict:
        flat = [image for pair in pairs for image in pair]
        processed = self.image_processor(images=flat, return_tensors="pt")
        if self.family in LLAVA_FAMILIES:
            vision = self.model.config.vision_config
            grid = vision.image_size // vision.patch_size
            max_crops = int(str(getattr(self.model.config, "vision_aspect_ratio", "anyres_max_9")).split("_")[-1])
            counts = [
                llava_onevision_tokens(
                    (int(size[0]), int(size[1])),
                    self.image_processor.image_grid_pinpoints,
                    vision.image_size,
                    grid,
                    max_crops,
                )
                for size in processed["image_sizes"]
            ]
            extra = {"pixel_values": processed["pixel_values"], "image_sizes": processed["image_sizes"]}
        else:
            merge = int(self.image_processor.merge_size)
            counts = [int(t * h * w) // merge**2 for t, h, w in processed["image_grid_thw"].tolist()]
            extra = {"pixel_values": processed["pixel_values"], "image_grid_thw": processed["image_grid_thw"]}
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": prompt}]}
        ]
        template = self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=True
        )
        if template.count(self.image_token) != 2:
            raise ValueError(
                f"the chat template wrote {template.count(self.image_token)} {self.image_token} "
                "placeholders for 2 images"
            )
        texts = []
        for index in range(len(pairs)):
            pieces = template.split(self.image_token)
            n_before, n_after = counts[2 * index], counts[2 * index + 1]
            texts.append(pieces[0] + self.image_token * n_before + pieces[1] + self.image_token * n_after + pieces[2])
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], **extra}

    @torch.inference_mode()
    def _generate(self, batch: dict, max_new_tokens: int, num_beams: int, min_new_tokens: int) -> list[CaptionResult]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if batch["pixel_values"].is_floating_point():
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        prompt_length = batch["input_ids"].shape[1]
        out = self.model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max(1, min_new_tokens),
            do_sample=False,
            num_beams=num_beams,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        new_tokens = out.sequences[:, prompt_length:]
        scores = self.model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
        results = []
        for row, tokens in enumerate(new_tokens.tolist()):
            stops = [i for i, t in enumerate(tokens) if t in self.stop_ids]
            length = stops[0] + 1 if stops else len(tokens)
            caption = " ".join(self.tokenizer.decode(tokens[:length], skip_special_tokens=True).split())
            confidence = min(1.0, max(0.0, math.exp(scores[row, :length].float().mean().item())))
            results.append(CaptionResult(caption, confidence, not is_no_change(caption), length))
        return results


__all__ = [
    "DEFAULT_PROMPT",
    "GENERAL_FAMILIES",
    "GeneralVLMEngine",
    "check_prompt",
    "compose_prompt",
    "llava_onevision_tokens",
    "model_family",
]
