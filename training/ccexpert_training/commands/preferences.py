"""``ccexpert preferences``: build DNPO chosen/rejected pairs (RSICP-style) for a records JSONL.

    ccexpert preferences --records train.jsonl --model work/stage3 --out prefs.jsonl [--k 8 --m 2 --tau1 0.3 ...]

Keyword-replacement negatives need no model; information-filtered negatives sample ``K`` captions per pair from
``--model`` (the SFT checkpoint, or a finished stage folder: its best checkpoint). ``--kinds replacement`` builds the
first kind only.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

HELP = "build DNPO chosen/rejected preference pairs"


DEFAULTS = {"k": 8, "m": 2, "tau1": 0.3, "tau2": 0.8, "replacement_fraction": 0.5, "temperature": 1.0, "top_p": 0.95}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "preferences",
        help="build DNPO chosen/rejected preference pairs",
        description="Keyword-replacement and information-filtered negatives for DNPO (docs/TRAINING.md, "
        "'Post-training (RSICCLLM)'). Deterministic for a seed.",
    )
    parser.add_argument("--records", required=True, type=Path, help="training records JSONL (pairs + references)")
    parser.add_argument("--out", required=True, type=Path, help="output preference JSONL")
    parser.add_argument("--model", default=None, help="checkpoint (or finished stage folder) to sample from")
    parser.add_argument(
        "--kinds",
        default="replacement,filtered",
        help="comma-separated negative kinds: replacement, filtered (default both)",
    )
    parser.add_argument("--k", type=int, default=DEFAULTS["k"], help="samples per pair for filtering (K)")
    parser.add_argument("--m", type=int, default=DEFAULTS["m"], help="keyword-replacement negatives per reference (M)")
    parser.add_argument("--tau1", type=float, default=DEFAULTS["tau1"], help="keep samples with S > tau1")
    parser.add_argument("--tau2", type=float, default=DEFAULTS["tau2"], help="keep samples with S < tau2")
    parser.add_argument(
        "--replacement-fraction",
        type=float,
        default=DEFAULTS["replacement_fraction"],
        help="share of keyword-replacement pairs in the output (with both kinds)",
    )
    parser.add_argument("--max-pairs", type=int, default=None, help="cap on the number of output pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=DEFAULTS["temperature"], help="sampling temperature")
    parser.add_argument("--top-p", type=float, default=DEFAULTS["top_p"], help="nucleus sampling threshold")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")


class ModelSampler:
    """K sampled captions for a record's image pair from a CCExpert checkpoint (seeded, so reproducible)."""

    def __init__(self, source: str, device: str, temperature: float, top_p: float, max_new_tokens: int):
        import torch
        from ccexpert.checkpoints import load_model, resolve_checkpoint
        from ccexpert.engine import resolve_device, resolve_dtype
        from ccexpert.processing_ccexpert import CCExpertProcessor

        from ..train import resolve_init

        if not temperature > 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
            raise ValueError(
                f"need temperature > 0, 0 < top_p <= 1, max_new_tokens >= 1; got {temperature}, "
                f"{top_p}, {max_new_tokens}"
            )
        folder = resolve_checkpoint(resolve_init(source))  # a stage folder -> its best checkpoint; a hub id -> cache
        self.device = resolve_device(device)
        self.model = load_model(folder, dtype=resolve_dtype("auto", self.device), device=self.device)
        self.processor = CCExpertProcessor.from_pretrained(folder)
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        self._torch = torch

    def __call__(self, record, k: int, seed: int) -> list[str]:
        torch = self._torch
        batch = self.processor([record.load_images()])
        batch = {name: value.to(self.device) for name, value in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                do_sample=True,
                temperature=self.temperature,
                top_p=self.top_p,
                top_k=0,
                num_return_sequences=k,
                max_new_tokens=self.max_new_tokens,
                eos_token_id=self.processor.im_end_id,
                pad_token_id=self.processor.pad_token_id,
            )
        captions = []
        for tokens in out[:, batch["input_ids"].shape[1] :].tolist():
            if self.processor.im_end_id in tokens:
                tokens = tokens[: tokens.index(self.processor.im_end_id)]
            captions.append(self.processor.decode(tokens))
        return captions


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..preferences import (
        PreferenceError,
        check_thresholds,
        filtered_pairs,
        mix_pairs,
        replacement_pairs,
        write_preferences,
    )
    from ..records import RecordError, read_records
    from ..train import ConfigError

    kinds = {kind.strip() for kind in args.kinds.split(",") if kind.strip()}
    try:
        if not kinds or kinds - {"replacement", "filtered"}:
            raise PreferenceError(f"--kinds must name replacement and/or filtered, got {args.kinds!r}")
        if "filtered" in kinds and args.model is None:
            raise PreferenceError("filtered negatives sample from a model: pass --model, or use --kinds replacement")
        check_thresholds(args.tau1, args.tau2)
        if args.m < 1 or args.k < 1:
            raise PreferenceError(f"--m and --k must be >= 1, got {args.m} and {args.k}")
        records = read_records(args.records)
        replacement = replacement_pairs(records, args.m, args.seed) if "replacement" in kinds else []
        filtered = []
        if "filtered" in kinds:
            sampler = ModelSampler(args.model, args.device, args.temperature, args.top_p, args.max_new_tokens)
            filtered = filtered_pairs(
                tqdm(records, desc="sampling", unit="pair"), sampler, args.k, args.tau1, args.tau2, args.seed
            )
        if kinds == {"replacement"}:
            fraction = 1.0
        elif kinds == {"filtered"}:
            fraction = 0.0
        else:
            fraction = args.replacement_fraction
        pairs = mix_pairs(replacement, filtered, fraction, args.seed, args.max_pairs)
        if not pairs:
            raise PreferenceError(
                f"no preference pairs: {len(replacement)} replacement and {len(filtered)} filtered candidates "
                f"(replacement fraction {fraction}); widen (tau1, tau2), raise K, or change the fraction"
            )
        written = write_preferences(pairs, args.out)
    except (PreferenceError, RecordError, ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = Counter(pair.source for pair in pairs)
    print(
        f"{written} pairs -> {args.out} (replacement {counts['replacement']} of {len(replacement)} candidates, "
        f"filtered {counts['filtered']} of {len(filtered)} candidates)"
    )
    return 0
