"""DNPO (RSICCLLM stage 4): DPO on chosen/rejected captions plus a reverse-KL anchor to the frozen SFT model.

    L = -log sigmoid(beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))])
        + lambda * KL(pi || ref)

x is the before/after image pair with the fixed prompt; y_w / y_l the chosen / rejected caption (with the closing
``<|im_end|>\\n``); log pi(y|x) sums the caption's token log-probabilities. The KL term is the exact reverse KL over
the vocabulary, sum_v pi(v) (log pi(v) - log ref(v)), at every caption position of both sequences (teacher forced,
so on the policy's own next-token distribution), averaged over those positions. Plain DPO only constrains the
*difference* of two log-ratios, so the policy can drift far from the SFT model while the margin grows; the paper
reports that plain DPO then collapses late in training, and the KL term prevents it.

Why not TRL's DPOTrainer: it is not installed, its vision path assumes the HF chat-template processors (one image
list per example, anyres ``image_sizes``), not our fixed two-image prompt with ``pixel_values [B, 2, 3, S, S]``, and
it has no full-vocabulary reverse-KL term. The loss here is ~40 lines on top of the HF ``Trainer``, which keeps
DeepSpeed, accelerate, checkpointing and logging identical to the SFT stages.

Batches stack the chosen and rejected sequences of B pairs into one [2B, L] batch (right padded; the prompt has
the same length for every pair, so the caption starts at the same position and only the last ``L - P + 1`` logits
are computed: a few dozen positions instead of ~1.5k at vocabulary width).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from torch.nn import functional
from torch.utils.data import Dataset
from transformers import Trainer

from ccexpert_training.preferences import PreferenceError, PreferencePair

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

    from ccexpert_training.stage.schema import DnpoSection

IGNORE_INDEX = -100


@dataclass(frozen=True)
class DNPOConfig:
    """beta: DPO inverse temperature; kl_lambda: weight of KL(policy || reference) (0 = plain DPO)."""

    beta: float = 0.1
    kl_lambda: float = 0.1

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"dnpo.beta must be > 0, got {self.beta}")
        if not self.kl_lambda >= 0:
            raise ValueError(f"dnpo.kl_lambda must be >= 0, got {self.kl_lambda}")


# ---------------------------------------------------------------------------------------------------------- data


class PreferenceDataset(Dataset):
    """Preference pairs -> ``{"uid", "before", "after", "chosen", "rejected"}`` with RGB PIL images."""

    def __init__(self, pairs: Sequence[PreferencePair]):
        if not pairs:
            raise PreferenceError("no preference pairs to train on")
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        images = []
        for role, path in (("before", pair.before), ("after", pair.after)):
            try:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
                raise PreferenceError(f"preference pair {pair.uid!r}, {role} image: cannot read {path}: {exc}") from exc
        return {
            "uid": pair.uid,
            "before": images[0],
            "after": images[1],
            "chosen": pair.chosen,
            "rejected": pair.rejected,
        }


class PreferenceCollator:
    """Items -> one right-padded batch of the B chosen then the B rejected sequences.

    Returns ``input_ids, attention_mask [2B, L]``, ``pixel_values [2B, 2, 3, S, S]``, ``labels [2B, L]`` with only
    the caption tokens (assistant answer after the fixed prompt) kept, and ``prompt_length`` (P, the same for all).
    """

    def __init__(self, processor):
        self.processor = processor
        self.prompt_length = len(processor.prompt_ids)

    def __call__(self, items: Sequence[dict]) -> dict:
        pairs = [(item["before"], item["after"]) for item in items]
        captions = [item["chosen"] for item in items] + [item["rejected"] for item in items]
        batch = dict(self.processor(pairs + pairs, captions=captions, padding_side="right"))
        labels = batch["labels"]
        labels[:, : self.prompt_length] = IGNORE_INDEX  # the prompt is identical for both: keep only the caption
        if (labels != IGNORE_INDEX).sum(dim=1).min() == 0:
            raise PreferenceError("a chosen or rejected caption tokenised to nothing")
        batch["prompt_length"] = self.prompt_length
        return batch


# ---------------------------------------------------------------------------------------------------------- loss


def caption_logits(model: nn.Module, batch: dict) -> torch.Tensor:
    """Logits [2B, L - P + 1, V] of the positions that predict the caption tokens (positions P - 1 .. L - 1)."""
    keep = batch["input_ids"].shape[1] - batch["prompt_length"] + 1
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
        logits_to_keep=keep,
        use_cache=False,
    )
    return out.logits


def sequence_logprobs(logits: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sum of caption-token log-probs [2B], log-softmax [2B, T, V], mask [2B, T]) with T = L - P caption slots."""
    prompt_length = batch["prompt_length"]
    targets = batch["labels"][:, prompt_length:]  # [2B, T]
    logprobs = functional.log_softmax(logits[:, :-1].float(), dim=-1)  # position t predicts token t + 1
    mask = targets != IGNORE_INDEX
    token = torch.gather(logprobs, 2, targets.clamp(min=0)[..., None]).squeeze(-1)  # [2B, T]
    return (token * mask).sum(dim=1), logprobs, mask


def reverse_kl(policy_logprobs: torch.Tensor, reference_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of sum_v pi(v) (log pi(v) - log ref(v)); both inputs [2B, T, V] log-softmax."""
    per_position = (policy_logprobs.exp() * (policy_logprobs - reference_logprobs)).sum(dim=-1)  # [2B, T]
    return (per_position * mask).sum() / mask.sum().clamp(min=1)


def dnpo_loss(
    policy_logits: torch.Tensor, reference_logits: torch.Tensor, batch: dict, config: DNPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DNPO loss and its parts (detached) for a stacked chosen/rejected batch."""
    policy_seq, policy_lp, mask = sequence_logprobs(policy_logits, batch)
    reference_seq, reference_lp, _ = sequence_logprobs(reference_logits, batch)
    policy_chosen, policy_rejected = policy_seq.chunk(2)
    reference_chosen, reference_rejected = reference_seq.chunk(2)
    chosen_reward = config.beta * (policy_chosen - reference_chosen)  # implicit rewards [B]
    rejected_reward = config.beta * (policy_rejected - reference_rejected)
    dpo = -functional.logsigmoid(chosen_reward - rejected_reward).mean()
    kl = reverse_kl(policy_lp, reference_lp, mask)
    loss = dpo + config.kl_lambda * kl
    parts = {
        "dpo_loss": dpo,
        "kl": kl,
        "rewards/chosen": chosen_reward.mean(),
        "rewards/rejected": rejected_reward.mean(),
        "rewards/margin": (chosen_reward - rejected_reward).mean(),
        "rewards/accuracy": (chosen_reward > rejected_reward).float().mean(),
        "logps/margin": (policy_chosen - policy_rejected).mean(),
    }
    return loss, {k: v.detach() for k, v in parts.items()}


# ------------------------------------------------------------------------------------------------------- trainer


class DNPOTrainer(Trainer):
    """HF Trainer with the DNPO loss and a frozen reference model (a deep copy of the policy unless given; under
    ZeRO-3 pass a separately loaded one, as ``stage.run.run_stage`` does, since a partitioned model cannot be copied).

    The reference is prepared like the policy: under DeepSpeed ZeRO-3 it is sharded by its own inference-only
    engine; under ZeRO-0/1/2 (whose sharding concerns optimizer state and gradients only) and without DeepSpeed it
    is a plain frozen module on the device.
    """

    # compute_loss returns the mean over one micro-batch: the Trainer must divide by the accumulation steps (its
    # default would not, because the batches carry "labels" and the model's forward takes **kwargs)
    loss_is_scaled_for_ga = False

    def __init__(self, model: nn.Module, ref_model: nn.Module | None = None, dnpo: DNPOConfig | None = None, **kwargs):
        args = kwargs.get("args")
        if args is not None:
            args.remove_unused_columns = False  # items carry chosen/rejected captions, not forward() arguments
        self.dnpo = dnpo or DNPOConfig()
        self._dnpo_metrics: dict[str, list[float]] = defaultdict(list)
        if ref_model is None:
            ref_model = copy.deepcopy(model)
        ref_model.eval()
        for param in ref_model.parameters():
            param.requires_grad_(False)
        super().__init__(model=model, **kwargs)
        self.ref_model = self._prepare_reference(ref_model)

    def _prepare_reference(self, ref_model: nn.Module) -> nn.Module:
        """ZeRO-3: an inference-only DeepSpeed engine shards the reference like the policy. Otherwise (no DeepSpeed,
        ZeRO-0/1/2, which shard optimizer state and gradients only) a plain frozen module on the device, in bf16
        when training in bf16."""
        stage = 0
        if self.is_deepspeed_enabled:
            ds_config = self.accelerator.state.deepspeed_plugin.deepspeed_config
            stage = ds_config.get("zero_optimization", {}).get("stage", 0)
        if stage == 3:
            import deepspeed

            config = copy.deepcopy(self.accelerator.state.deepspeed_plugin.deepspeed_config)
            config.pop("optimizer", None)
            config.pop("scheduler", None)
            # a transformers model (CCExpert); nn.Module types its attributes Tensor | Module
            hidden: int = cast("PreTrainedConfig", ref_model.config).text_config.hidden_size
            zero = config["zero_optimization"]
            for key, value in (
                ("reduce_bucket_size", hidden * hidden),
                ("stage3_prefetch_bucket_size", int(0.9 * hidden * hidden)),
                ("stage3_param_persistence_threshold", 10 * hidden),
            ):
                if zero.get(key, "auto") == "auto":
                    zero[key] = value
            engine, *_ = deepspeed.initialize(model=ref_model, config=config)
            engine.eval()  # DeepSpeedEngine.eval() returns None
            return engine
        dtype = torch.bfloat16 if self.args.bf16 else None
        return ref_model.to(device=self.args.device, dtype=dtype).eval()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        policy_logits = caption_logits(model, inputs)
        with torch.no_grad():
            reference_logits = caption_logits(self.ref_model, inputs)
        loss, parts = dnpo_loss(policy_logits, reference_logits, inputs, self.dnpo)
        prefix = "" if model.training else "eval_"
        for name, value in parts.items():
            self._dnpo_metrics[prefix + name].append(value.float().mean().item())
        return (loss, {"logits": policy_logits}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Add the mean of each DNPO quantity since the last log (train or eval, matching ``logs``)."""
        evaluating = any(key.startswith("eval_") for key in logs)
        for name in [n for n in self._dnpo_metrics if n.startswith("eval_") == evaluating]:
            values = self._dnpo_metrics.pop(name)
            logs[name] = sum(values) / len(values)
        super().log(logs, *args, **kwargs)


def dnpo_stage_trainer(base_class: type, section: DnpoSection, processor, reference: nn.Module | None = None):
    """For ``stage.run.run_stage``: (trainer class, collator, extra trainer kwargs) of a DNPO stage.

    The class combines the DNPO loss with ``base_class`` (the SFT stages' trainer: per-part AdamW groups and
    generation-based validation, so the best DNPO checkpoint is selected on validation S*m like every stage).
    """
    trainer_class = type("DNPOCaptionTrainer", (DNPOTrainer, base_class), {})
    dnpo = DNPOConfig(beta=float(section.beta), kl_lambda=float(section.kl_lambda))
    return trainer_class, PreferenceCollator(processor), {"ref_model": reference, "dnpo": dnpo}
