"""Caption-metric evaluation of a stage: greedy predictions sharded over the ranks, the metrics computed once and
broadcast, the export of the selected checkpoint, and the single final evaluation on the test split."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from .distributed import use_bf16, world
from .schema import StageConfig

METRIC_FOR_BEST = "Sm"  # S*m; logged as eval_Sm ('*' is not a valid TensorBoard tag character)


def metrics_from(predictions) -> dict:
    """The logged validation metrics: S*m (as ``Sm``) and its components."""
    from ..caption_metrics import evaluate_predictions

    overall = evaluate_predictions(predictions).overall
    renamed = {"Sm": overall["S*m"]}
    for key in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "change_accuracy"):
        renamed[key] = overall[key]
    return renamed


def broadcast_metrics(compute) -> dict:
    """Rank 0 computes (METEOR runs one JVM, not one per rank); every rank gets the same dict."""
    import torch.distributed as dist

    rank, size = world()
    if size == 1 or not dist.is_initialized():
        return compute()
    box: list = [compute() if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def generate_predictions(model, processor, records, batch_size: int, max_new_tokens: int, distributed: bool):
    """Greedy captions for ``records`` -> list[Prediction] (complete on every rank when ``distributed``).

    Ranks take interleaved shards padded to equal length (ZeRO-3 generation is collective); padding is dropped
    before gathering, so each uid is scored exactly once.
    """
    import torch
    import torch.distributed as dist
    from ccexpert.engine import CaptionEngine

    from ..records import Prediction

    rank, size = world() if distributed else (0, 1)
    records = list(records)
    per_rank = math.ceil(len(records) / size)
    mine = records[rank::size]
    padded = mine + [records[0]] * (per_rank - len(mine))
    was_training = model.training
    engine = CaptionEngine(model, processor, max_batch=batch_size)
    engine.wording = "scene"  # scored against references that say "the scene"
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(padded), batch_size):
                chunk = padded[start : start + batch_size]
                pairs = [record.load_images() for record in chunk]
                results = engine.caption(pairs, max_new_tokens=max_new_tokens)
                for offset, (record, result) in enumerate(zip(chunk, results, strict=True)):
                    if start + offset < len(mine):
                        out.append(Prediction(record.uid, result.caption, tuple(record.captions)))
    finally:
        model.train(was_training)
    if size > 1 and dist.is_initialized():
        gathered: list = [None] * size
        dist.all_gather_object(gathered, out)
        out = [p for part in gathered for p in part]
    return out


def export_best(checkpoint: Path, best_dir: Path, processor) -> None:
    """Copy the weights + config of the selected checkpoint into a clean model folder (no optimizer state)."""
    if best_dir.exists():
        shutil.rmtree(best_dir)
    best_dir.mkdir(parents=True)
    copied = []
    for item in checkpoint.iterdir():
        if item.is_file() and (item.suffix in (".safetensors", ".json") and not item.name.startswith("trainer_state")):
            if item.name.startswith(("rng_state", "scheduler", "optimizer")):
                continue
            shutil.copy2(item, best_dir / item.name)
            copied.append(item.name)
    if not any(name.endswith(".safetensors") for name in copied):
        raise RuntimeError(
            f"{checkpoint} holds no safetensors weights (ZeRO-3 needs stage3_gather_16bit_weights_on_model_save: true)"
        )
    processor.save_pretrained(best_dir)


def evaluate_checkpoint(model_dir: Path, records_path, output_dir: Path, cfg: StageConfig) -> dict:
    """Score one checkpoint on one split (the single final test evaluation): predictions + metrics JSON."""
    from ccexpert.engine_api import resolve_device, resolve_dtype
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from ccexpert.processing_ccexpert import CCExpertProcessor

    from ..caption_metrics import evaluate_predictions
    from ..records import read_records, write_predictions

    device = resolve_device("auto")
    dtype = resolve_dtype("bf16" if use_bf16(cfg.training.precision) else "fp32", device)
    model = CCExpertForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()  # type: ignore[arg-type]  # .to() typed loosely
    processor = CCExpertProcessor.from_pretrained(model_dir)
    predictions = generate_predictions(
        model,
        processor,
        read_records(records_path),
        cfg.batch.eval_batch_size,
        cfg.training.eval_max_new_tokens,
        distributed=False,
    )
    write_predictions(predictions, output_dir / "test_predictions.jsonl")
    report = evaluate_predictions(predictions)
    result = {
        "overall": report.overall,
        "change": report.change,
        "no_change": report.no_change,
        "checkpoint": str(model_dir),
        "split": str(records_path),
    }
    (output_dir / "test_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"[{cfg.stage}] test: S*m {report.overall['S*m']:.2f} on {report.overall['n']} pairs", flush=True)
    return result
