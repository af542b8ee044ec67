"""CCExpert: LLaVA-OneVision with the Difference-aware Integration Module (DIM) between SigLIP and the projector.

Data flow for B before/after pairs (full size: N = 729 tokens, D = 1152, S = 4 scales, H = LLM width):

    pixel_values [B, 2, 3, 384, 384]  (image 0 = before = A, image 1 = after = B)
      -> SigLIP on [2B, 3, 384, 384] (A0, B0, A1, B1, ...), hidden states [2B, N, D] per layer
      -> DIM on the `dim_layers` states (4 scales stacked on the batch axis, [S*B, N, D] per image)
         = gated fused refinement [B, N, D] + the final-stage state (layer 26), one per image
      -> projector (Linear D->H, GELU, Linear H->H) -> [B, 2, N, H]
      -> spliced in order into the 2 * 729 `<image>` placeholders of each prompt -> Qwen2.

The DIM follows ``../shared/reference/ccexpert_model.md`` §2 exactly (parameter names are ours; ``checkpoints.py`` maps
the official ones). Only parameters the reference uses in its forward are built: 63,765,505 at D = 1152, depth 2.

Only transformers' public API is used (``PreTrainedModel``, ``GenerationMixin``, ``ModelOutput``, the Auto classes,
``initialization``): the output classes, projector, loss and logits slicing are ours, and keyword arguments we do not
own (the KV cache, position ids, attention kwargs) are passed through to the language model unnamed, so the cache
keeps working whatever transformers calls it (``past_key_values`` up to 5.24, ``cache`` from 5.25).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import transformers
from packaging.version import Version
from torch import nn
from torch.nn import functional
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_ccexpert import CCExpertConfig, text_config_of, vision_config_of

# Selecting vision hidden states by index (`output_hidden_states=[...]`) drops the last layer before 5.23; pip users get
# the range of pyproject.toml, this catches an environment that did not come from it.
_MIN_TRANSFORMERS = "5.23"
if Version(transformers.__version__) < Version(_MIN_TRANSFORMERS):
    raise ImportError(
        f"ccexpert needs transformers>={_MIN_TRANSFORMERS},<6; this environment has {transformers.__version__}"
    )


def sine_position_encoding(grid: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """DETR-style normalised 2-D sine encoding [grid*grid, dim], row-major like SigLIP's patches (reference §2.2).

    Per axis `dim // 2` channels; position p in 1..grid maps to (p - 0.5) / (grid + 1e-6) * 2pi; frequency of channel k
    is 10000 ** (2 * (k // 2) / (dim // 2)); even channels sin, odd channels cos, interleaved; output [PE_y || PE_x].
    """
    num_feats = dim // 2
    steps = torch.arange(1, grid + 1, dtype=torch.float32, device=device)
    steps = (steps - 0.5) / (grid + 1e-6) * (2 * math.pi)  # [grid]
    channel = torch.arange(num_feats, dtype=torch.float32, device=device)
    freq = 10000 ** (2 * torch.div(channel, 2, rounding_mode="floor") / num_feats)  # [num_feats]
    angles = steps[:, None] / freq  # [grid, num_feats]
    pe_axis = torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=-1).flatten(1)  # [grid, num_feats]
    pe_y = pe_axis[:, None, :].expand(grid, grid, num_feats)  # row i
    pe_x = pe_axis[None, :, :].expand(grid, grid, num_feats)  # column j
    return torch.cat((pe_y, pe_x), dim=-1).reshape(grid * grid, dim).to(dtype)  # [N, D]


class CCExpertDIMAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections (with bias), no mask, no dropout."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        batch, q_len, dim = query.shape  # query [b, Nq, D], key/value [b, Nk, D]
        head_dim = dim // self.num_heads
        q = self.q_proj(query).view(batch, q_len, self.num_heads, head_dim).transpose(1, 2)  # [b, h, Nq, d]
        k = self.k_proj(key).view(batch, key.shape[1], self.num_heads, head_dim).transpose(1, 2)  # [b, h, Nk, d]
        v = self.v_proj(value).view(batch, value.shape[1], self.num_heads, head_dim).transpose(1, 2)  # [b, h, Nk, d]
        out = nn.functional.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v, [b, h, Nq, d]
        return self.out_proj(out.transpose(1, 2).reshape(batch, q_len, dim))  # [b, Nq, D]


class CCExpertDIMMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf GELU, as the reference
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CCExpertChangeFeatureInit(nn.Module):
    """Change Feature Init (CFE, §2.3): ΔF = W_p [A ⊙ σ(W_m[A;B]) ; B ⊙ σ(W_m[B;A]) ; difference]."""

    def __init__(self, dim: int):
        super().__init__()
        self.mix_proj = nn.Linear(2 * dim, dim)  # W_m, shared by both orders
        self.delta_proj = nn.Linear(3 * dim, dim)  # W_p

    def forward(self, image_a: torch.Tensor, image_b: torch.Tensor) -> torch.Tensor:
        gated_a = image_a * torch.sigmoid(self.mix_proj(torch.cat((image_a, image_b), dim=-1)))  # [b, N, D]
        gated_b = image_b * torch.sigmoid(self.mix_proj(torch.cat((image_b, image_a), dim=-1)))  # [b, N, D]
        return self.delta_proj(torch.cat((gated_a, gated_b, gated_a - gated_b), dim=-1))  # [b, N, D]


class CCExpertChangeAwareLayer(nn.Module):
    """One change-aware (two-way) layer, §2.4. Post-norm on the change stream; no norm or MLP on the image stream."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int):
        super().__init__()
        self.change_self_attn = CCExpertDIMAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.change_cross_attn = CCExpertDIMAttention(dim, num_heads)  # change -> (A, B, change)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = CCExpertDIMMLP(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.image_cross_attn = CCExpertDIMAttention(dim, num_heads)  # (A or B) -> (itself, change), shared by A and B
        # learned flags e_A, e_B, e_C (1-row embeddings, as stored by the reference)
        self.image_a_flag = nn.Embedding(1, dim)
        self.image_b_flag = nn.Embedding(1, dim)
        self.change_flag = nn.Embedding(1, dim)

    def forward(
        self,
        queries: torch.Tensor,  # Q [b, N, D]
        change: torch.Tensor | None,  # fresh CFE output C [b, N, D]; None in the first layer (Q already is C)
        image_a: torch.Tensor,  # X_A [b, N, D]
        image_b: torch.Tensor,  # X_B [b, N, D]
        pos: torch.Tensor,  # P [N, D]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flag_a, flag_b, flag_c = self.image_a_flag.weight, self.image_b_flag.weight, self.change_flag.weight  # [1, D]

        # 1. change self-attention
        if change is not None:
            queries = queries + change
        q_pos = queries + pos
        queries = self.norm1(queries + self.change_self_attn(q_pos, q_pos, queries))

        # 2. change -> [A ; B ; change] cross-attention (3N keys)
        change_key = queries + pos + flag_c  # [b, N, D]
        key_a = image_a + pos + flag_a
        key_b = image_b + pos + flag_b
        keys = torch.cat((key_a, key_b, change_key), dim=1)  # [b, 3N, D]
        values = torch.cat((image_a, image_b, queries), dim=1)  # [b, 3N, D]
        queries = self.norm2(queries + self.change_cross_attn(change_key, keys, values))

        # 3. MLP
        queries = self.norm3(queries + self.mlp(queries))

        # 4. image <- [itself ; change] cross-attention, A and B as one 2b batch; residual on the query incl. P and flag
        change_key = queries + pos + flag_c
        image_queries = torch.cat((key_a, key_b), dim=0)  # [2b, N, D]
        image_keys = torch.cat((image_queries, torch.cat((change_key, change_key), dim=0)), dim=1)  # [2b, 2N, D]
        image_values = torch.cat((torch.cat((image_a, image_b), dim=0), torch.cat((queries, queries), dim=0)), dim=1)
        refined = image_queries + self.image_cross_attn(image_queries, image_keys, image_values)  # [2b, N, D]
        refined_a, refined_b = refined.chunk(2, dim=0)
        return refined_a, refined_b, queries


class CCExpertScaleGate(nn.Module):
    """Gate MLP of the multi-scale fusion (§2.5): token-mean of [A ; B ; Q] -> one weight in (0, 1) per sample."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(3 * dim, dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(self.act(self.fc1(pooled))))  # [..., 3D] -> [..., 1]


class CCExpertDifferenceIntegration(nn.Module):
    """The DIM (§2): change-aware refinement of S SigLIP scales (weights shared), gated fusion, residual on the last."""

    def __init__(self, config: CCExpertConfig):
        super().__init__()
        vision = vision_config_of(config)
        dim = vision.hidden_size
        self.grid = vision.image_size // vision.patch_size
        self.change_feature_init = CCExpertChangeFeatureInit(dim)
        assert config.dim_num_heads is not None, "CCExpertConfig.__post_init__ sets dim_num_heads"
        self.layers = nn.ModuleList(
            CCExpertChangeAwareLayer(dim, config.dim_num_heads, config.dim_mlp_ratio * dim)
            for _ in range(config.dim_depth)
        )
        self.scale_gate = CCExpertScaleGate(dim)

    def forward(
        self, scales_a: torch.Tensor, scales_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """scales_a/b [S, B, N, D] (shallow to deep; the last is the final stage) -> (out_a, out_b, change) [B, N, D].

        `change` (the fused change stream) is not fed to the LLM, as in the reference; it is returned for inspection.
        """
        num_scales, batch, num_tokens, dim = scales_a.shape
        image_a = scales_a.reshape(num_scales * batch, num_tokens, dim)  # scales stacked on the batch axis [S*B, N, D]
        image_b = scales_b.reshape(num_scales * batch, num_tokens, dim)
        pos = sine_position_encoding(self.grid, dim, device=image_a.device, dtype=image_a.dtype)  # [N, D]

        queries = None
        for layer in self.layers:
            change = self.change_feature_init(image_a, image_b)  # recomputed on the refined tokens of every layer
            if queries is None:  # first layer: Q = C, no extra add
                image_a, image_b, queries = layer(change, None, image_a, image_b, pos)
            else:
                image_a, image_b, queries = layer(queries, change, image_a, image_b, pos)

        assert queries is not None, "the config validates dim_depth >= 1, so the loop ran"
        image_a = image_a.view(num_scales, batch, num_tokens, dim)
        image_b = image_b.view(num_scales, batch, num_tokens, dim)
        queries = queries.view(num_scales, batch, num_tokens, dim)
        pooled = torch.cat((image_a, image_b, queries), dim=-1).mean(dim=2)  # [S, B, 3D]
        weights = self.scale_gate(pooled)[..., None]  # [S, B, 1, 1]
        norm = weights.sum(dim=0) + 1e-6  # [B, 1, 1]
        fused_a = (weights * image_a).sum(dim=0) / norm  # [B, N, D]
        fused_b = (weights * image_b).sum(dim=0) / norm
        fused_change = (weights * queries).sum(dim=0) / norm
        return fused_a + scales_a[-1], fused_b + scales_b[-1], fused_change


# --------------------------------------------------------------------------------------------------------------------
# RSICCLLM's difference-aware branch
#
# RSICCLLM's difference-aware branch: an explicit pixel/texture change signal added to the vision features.
#
# Enabled by ``CCExpertConfig.diff_branch`` (off by default: no parameters, so official checkpoints load unchanged).
# For a batch of B pairs (full size: 384 px, patch 14, N = 27 * 27 = 729 tokens, D = 1152):
#
#     pixel_values [B, 2, 3, 384, 384] (SigLIP-normalised, image 0 = before, 1 = after)
#       T  = after - before                                  [B, 3, 384, 384]  pixel difference
#       S_t = 8 fixed 3x3 operators on the grey image t       [B, 8, 384, 384]  texture responses
#       dS = (S_after - S_before) / (|S_before|_1 + |S_after|_1 + eps)   (L1 over the 8 operators, per pixel)
#       patch-embed both to the vision grid (conv, kernel = stride = patch) -> T_e, dS_e [B, N, D], + 2-D sine positions
#       F  = softmax(q(T_e) k(dS_e)^T / sqrt(d)) v(dS_e)      multi-head cross-attention, the difference is the query
#       V_before += g_before * F,  V_after += g_after * F     before the projector; g per channel, zero at init
#
# The eight operators (plain, central difference, four one-sided directional differences, two symmetric gradients)
# follow the paper's description (``../shared/reference/rsiccllm.md``). All but the plain one sum to zero, so they do
# not respond to a uniform brightness offset, and the normalised difference dS lies in [-1, 1] whatever the contrast.
# The gates start at zero, so switching the branch on over an SFT checkpoint starts from exactly that checkpoint's
# outputs and the branch learns how much to add.
#
# **Hough projection: not built.** The paper projects each operator response to (rho, theta) Hough space and back
# before differencing. Projecting an image onto lines and back-projecting without a filter is, in the continuum, a
# convolution with a 1/r kernel (a fixed isotropic blur), so it adds no information the learned patch encoder cannot
# take from the raw responses, while it costs O(H * W * n_theta) per operator and image and brings bin choices the
# paper does not give. Its ablation gain is the smallest of the parts (0.24 BLEU-4 without the texture statistic).


def texture_operators() -> torch.Tensor:
    """The 8 fixed 3x3 operators [8, 1, 3, 3]: plain (3x3 mean), central difference (sum of neighbour - centre),
    four one-sided directional differences (E, S, SE, SW neighbour - centre), two symmetric gradients (E - W, S - N)."""
    kernels = torch.zeros(8, 3, 3)
    kernels[0] = 1.0 / 9.0  # plain
    kernels[1] = 1.0 / 8.0  # central difference: mean of the 8 neighbours minus the centre
    kernels[1, 1, 1] = -1.0
    for index, (row, col) in enumerate(((1, 2), (2, 1), (2, 2), (2, 0)), start=2):  # E, S, SE, SW
        kernels[index, row, col] = 1.0
        kernels[index, 1, 1] = -1.0
    kernels[6, 1, 2], kernels[6, 1, 0] = 0.5, -0.5  # horizontal symmetric gradient
    kernels[7, 2, 1], kernels[7, 0, 1] = 0.5, -0.5  # vertical symmetric gradient
    return kernels[:, None]


NUM_OPERATORS = 8


def texture_difference(before: torch.Tensor, after: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """dS [B, 8, H, W] in [-1, 1] from two normalised images [B, 3, H, W] (grey = channel mean, replicate padding)."""
    kernels = texture_operators().to(device=before.device, dtype=before.dtype)
    grey = torch.stack((before, after)).mean(dim=2, keepdim=True).flatten(0, 1)  # [2B, 1, H, W]
    responses = functional.conv2d(functional.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)  # [2B, 8, H, W]
    s_before, s_after = responses.chunk(2, dim=0)
    norm = s_before.abs().sum(dim=1, keepdim=True) + s_after.abs().sum(dim=1, keepdim=True) + eps  # [B, 1, H, W]
    return (s_after - s_before) / norm


class DifferenceBranch(nn.Module):
    """Pixel + texture difference -> cross-attention -> gated additive terms for the before/after vision features."""

    def __init__(self, config):
        super().__init__()
        vision = config.vision_config
        dim, patch = vision.hidden_size, vision.patch_size
        self.grid = vision.image_size // patch
        self.pixel_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)  # T -> [B, D, grid, grid]
        self.texture_embed = nn.Conv2d(NUM_OPERATORS, dim, kernel_size=patch, stride=patch)  # dS -> [B, D, grid, grid]
        self.pixel_norm = nn.LayerNorm(dim)
        self.texture_norm = nn.LayerNorm(dim)
        if dim % config.dim_num_heads:
            raise ValueError(f"difference branch: width {dim} is not divisible by {config.dim_num_heads} heads")
        # the DIM's attention (separate q/k/v/out projections): pixel difference as query, texture as key/value
        self.cross_attn = CCExpertDIMAttention(dim, config.dim_num_heads)
        self.gate_before = nn.Parameter(torch.zeros(dim))
        self.gate_after = nn.Parameter(torch.zeros(dim))

    def init_gates(self) -> None:
        """Zero gates (called by the model's weight init; a no-op for gates loaded from a checkpoint)."""
        init.zeros_(self.gate_before)
        init.zeros_(self.gate_after)

    def forward(
        self, pixel_values: torch.Tensor, features_before: torch.Tensor, features_after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """pixel_values [B, 2, 3, H, W], features [B, N, D] -> additive terms (g_before * F, g_after * F) [B, N, D]."""
        before, after = pixel_values[:, 0], pixel_values[:, 1]  # [B, 3, H, W]
        dim = features_before.shape[-1]
        pos = sine_position_encoding(self.grid, dim, device=before.device, dtype=features_before.dtype)  # [N, D]
        pixel = self.pixel_embed(after - before).flatten(2).transpose(1, 2)  # T_e [B, N, D]
        texture = self.texture_embed(texture_difference(before, after)).flatten(2).transpose(1, 2)  # dS_e [B, N, D]
        if pixel.shape[1:] != features_before.shape[1:]:
            raise ValueError(
                f"difference branch: images give {tuple(pixel.shape[1:])} tokens x width but the vision features are "
                f"{tuple(features_before.shape[1:])}"
            )
        pixel = self.pixel_norm(pixel).to(features_before.dtype)
        texture = self.texture_norm(texture).to(features_before.dtype)
        fused = self.cross_attn(pixel + pos, texture + pos, texture)  # F [B, N, D]
        return self.gate_before * fused, self.gate_after * fused


# transformers' names for the projector activations LLaVA-OneVision checkpoints use
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
}


class CCExpertMultiModalProjector(nn.Module):
    """Linear D->H, activation, Linear H->H; parameter names as LLaVA-OneVision's, so its checkpoints load."""

    def __init__(self, config: CCExpertConfig):
        super().__init__()
        bias = config.multimodal_projector_bias
        text_width = text_config_of(config).hidden_size
        self.linear_1 = nn.Linear(vision_config_of(config).hidden_size, text_width, bias=bias)
        if config.projector_hidden_act not in _ACTIVATIONS:
            raise ValueError(
                f"projector_hidden_act {config.projector_hidden_act!r} is not one of {sorted(_ACTIVATIONS)}"
            )
        self.act = _ACTIVATIONS[config.projector_hidden_act]()
        self.linear_2 = nn.Linear(text_width, text_width, bias=bias)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(image_features)))


@dataclass
class CCExpertModelOutputWithPast(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
        The language model's last hidden state.
    past_key_values / cache (`Cache`, *optional*):
        The language model's KV cache, under the name the installed transformers uses (`past_key_values` up to
        5.24, `cache` from 5.25; the other one stays None), so that `generate` finds it in either.
    image_hidden_states (`torch.FloatTensor` of shape `(batch_size, 2, num_image_tokens, hidden_size)`, *optional*):
        The projected before/after image tokens spliced into the prompt.
    change_hidden_states (`torch.FloatTensor` of shape `(batch_size, num_image_tokens, vision_hidden)`, *optional*):
        The DIM's fused change stream (not fed to the LLM, as in the reference); the auxiliary change-mask loss
        reads it.
    """

    last_hidden_state: torch.Tensor | None = None
    past_key_values: object | None = None
    cache: object | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    image_hidden_states: torch.Tensor | None = None
    change_hidden_states: torch.Tensor | None = None


@dataclass
class CCExpertCausalLMOutputWithPast(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` is given):
        Caption loss (next-token cross-entropy), plus the auxiliary change-mask loss when configured.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
        Next-token scores of the kept positions (`logits_to_keep`).
    past_key_values / cache, hidden_states, attentions, image_hidden_states:
        As in [`CCExpertModelOutputWithPast`].
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: object | None = None
    cache: object | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    image_hidden_states: torch.Tensor | None = None


def _kv_cache(output: ModelOutput) -> dict:
    """The KV cache of a transformers output under the field name its class declares ({} when there is none)."""
    declared = getattr(output, "__dataclass_fields__", {})
    return {
        name: getattr(output, name)
        for name in ("past_key_values", "cache")
        if name in declared and getattr(output, name) is not None
    }


def keep_last_logits(hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
    """The positions to compute logits for: the last `logits_to_keep` (0 = all), or the given indices."""
    if isinstance(logits_to_keep, int):
        return hidden_states[:, -logits_to_keep:, :] if logits_to_keep else hidden_states
    return hidden_states[:, logits_to_keep, :]


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None
) -> torch.Tensor:
    """Next-token cross-entropy in fp32, -100 ignored: the mean over labelled tokens, or their sum divided by
    `num_items_in_batch` (the Trainer's count over the whole accumulated batch, so accumulation is exact)."""
    shifted = nn.functional.pad(labels, (0, 1), value=-100)[..., 1:].reshape(-1).to(logits.device)
    flat = logits.float().reshape(-1, logits.shape[-1])
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(flat, shifted, ignore_index=-100)
    loss = nn.functional.cross_entropy(flat, shifted, ignore_index=-100, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


class CCExpertPreTrainedModel(PreTrainedModel):
    config: CCExpertConfig
    base_model_prefix = "model"
    # transformers annotates this `str | list[str]`, but its own models (LLaVA, LLaVA-OneVision) set tuples
    input_modalities = ("image", "text")  # type: ignore[assignment]
    supports_gradient_checkpointing = True
    _no_split_modules = ["SiglipEncoderLayer", "Qwen2DecoderLayer", "CCExpertChangeAwareLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        """Library init (N(0, initializer_range) Linear/Embedding, zero bias, LayerNorm 1/0), zero diff-branch gates,
        N(0, 1/sqrt(H)) for the unused `image_newline` (as LLaVA-OneVision, so seeded inits stay the same)."""
        super()._init_weights(module)
        if isinstance(module, CCExpertModel):
            init.normal_(module.image_newline, mean=0.0, std=1 / math.sqrt(text_config_of(self.config).hidden_size))
        if isinstance(module, DifferenceBranch):
            module.init_gates()


class CCExpertModel(CCExpertPreTrainedModel):
    """LLaVA-OneVision's module tree with two images per sample, 729 tokens each, the DIM, and no anyres/image_newline.

    `image_newline` is kept (never used) so LLaVA-OneVision checkpoints load without unexpected keys.
    """

    def __init__(self, config: CCExpertConfig):
        super().__init__(config)
        text_config = text_config_of(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.multi_modal_projector = CCExpertMultiModalProjector(config)
        self.image_newline = nn.Parameter(torch.zeros(text_config.hidden_size, dtype=self.dtype))
        self.dim = CCExpertDifferenceIntegration(config) if config.use_dim else None
        # Optional RSICCLLM difference-aware branch (`DifferenceBranch` above), off by default.
        self.diff_branch = DifferenceBranch(config) if config.diff_branch else None
        self.vocab_size = text_config.vocab_size
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """pixel_values [B, 2, 3, S, S] -> projected image tokens [B, 2, N, H] (image 0 = before, 1 = after)."""
        return self.encode_images(pixel_values)[0]

    def encode_images(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """pixel_values [B, 2, 3, S, S] -> (projected image tokens [B, 2, N, H], the DIM's fused change stream
        [B, N, D] or None without the DIM)."""
        if pixel_values.ndim != 5 or pixel_values.shape[1] != 2:
            raise ValueError(
                f"pixel_values must be [batch, 2, 3, H, W] (before, after), got {tuple(pixel_values.shape)}"
            )
        batch = pixel_values.shape[0]
        dim_layers = self.config.dim_layers
        assert dim_layers is not None, "CCExpertConfig.__post_init__ sets dim_layers"
        num_layers = vision_config_of(self.config).num_hidden_layers
        assert isinstance(self.config.vision_feature_layer, int), "the config validates one int feature layer"
        base_layer = self.config.vision_feature_layer % (num_layers + 1)
        wanted = sorted({*dim_layers, base_layer}) if self.dim is not None else [base_layer]
        vision = self.vision_tower(pixel_values.flatten(0, 1), output_hidden_states=wanted, return_dict=True)
        hidden = vision.hidden_states  # tuple indexed by absolute layer; entries [2B, N, D]

        change = None
        if self.dim is not None:
            scales = torch.stack([hidden[i] for i in dim_layers])  # [S, 2B, N, D]
            scales = scales.unflatten(1, (batch, 2))  # [S, B, 2, N, D]
            features_a, features_b, change = self.dim(scales[:, :, 0], scales[:, :, 1])  # [B, N, D] each
        else:
            base = hidden[base_layer].unflatten(0, (batch, 2))  # [B, 2, N, D]
            features_a, features_b = base[:, 0], base[:, 1]

        if self.diff_branch is not None:
            delta_a, delta_b = self.diff_branch(pixel_values, features_a, features_b)  # [B, N, D] each
            features_a, features_b = features_a + delta_a, features_b + delta_b

        features = torch.stack((features_a, features_b), dim=1)  # [B, 2, N, D]
        return self.multi_modal_projector(features), change  # [B, 2, N, H], [B, N, D]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> CCExpertModelOutputWithPast:
        """`kwargs` (KV cache, position ids, use_cache, attention options) go to the language model unchanged."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)  # [B, L, H]

        image_features: torch.Tensor | None = None
        change: torch.Tensor | None = None
        if pixel_values is not None:
            if input_ids is None:
                raise ValueError("pixel_values need input_ids with <image> placeholders")
            image_mask = input_ids == self.config.image_token_id  # [B, L]
            expected = 2 * self.config.image_seq_length
            counts = image_mask.sum(dim=1).tolist()
            if pixel_values.shape[0] != input_ids.shape[0] or any(c != expected for c in counts):
                raise ValueError(
                    f"each sample needs exactly {expected} image placeholder tokens (2 x "
                    f"{self.config.image_seq_length}) and one image pair; got placeholder counts {counts} for "
                    f"{pixel_values.shape[0]} pairs"
                )
            image_features, change = self.encode_images(pixel_values.to(self.vision_tower.dtype))  # [B, 2, N, H]
            image_features = image_features.to(inputs_embeds.device, inputs_embeds.dtype)
            inputs_embeds = inputs_embeds.masked_scatter(image_mask[..., None], image_features)

        outputs = self.language_model(attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        return CCExpertModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            **_kv_cache(outputs),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=image_features,
            change_hidden_states=change,
        )


class CCExpertForConditionalGeneration(CCExpertPreTrainedModel, GenerationMixin):
    """CCExpert captioner: `forward(input_ids, attention_mask, pixel_values [B, 2, 3, 384, 384], labels=None)`."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: CCExpertConfig):
        super().__init__(config)
        text_config = text_config_of(config)
        self.model = CCExpertModel(config)
        self.lm_head = nn.Linear(text_config.hidden_size, text_config.vocab_size, bias=False)
        # auxiliary change-mask heads (change_mask_loss_weight > 0; training only, never used to caption): one on the
        # DIM's change stream, one on the projected image tokens the LLM reads
        self.change_mask_head: nn.Linear | None = None
        self.change_mask_token_head: nn.Linear | None = None
        if config.change_mask_loss_weight > 0:
            self.change_mask_head = nn.Linear(vision_config_of(config).hidden_size, 1)
            self.change_mask_token_head = nn.Linear(text_config.hidden_size, 1)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.model.get_image_features(pixel_values)

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, pixel_values=None, **kwargs) -> dict:
        """The library's preparation, with the images given at prefill only (when the KV cache is still empty, or
        on every step without a cache): later steps feed one new token and no placeholders."""
        model_inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        model_inputs.pop("pixel_values", None)
        cache = model_inputs.get("cache", model_inputs.get("past_key_values"))
        if cache is None or cache.get_seq_length() == 0 or not kwargs.get("use_cache", True):
            model_inputs["pixel_values"] = pixel_values
        return model_inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        change_mask: torch.Tensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        **kwargs,
    ) -> CCExpertCausalLMOutputWithPast:
        """`change_mask` [B, N]: fraction of changed pixels per patch (< 0 = no mask for that sample); with `labels`
        and `config.change_mask_loss_weight > 0` it adds the auxiliary change-mask loss (see the config).
        `num_items_in_batch` (from the Trainer): labelled tokens in the whole accumulated batch. Other `kwargs` (KV
        cache, position ids, use_cache, attention options) go to the language model unchanged."""
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        logits = self.lm_head(keep_last_logits(outputs.last_hidden_state, logits_to_keep))  # [B, L, V]
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels, num_items_in_batch)
            if self.change_mask_head is not None and change_mask is not None:
                aux = self.config.change_mask_loss_weight * self.change_mask_loss(
                    outputs.change_hidden_states, outputs.image_hidden_states, change_mask
                )
                if num_items_in_batch is not None:
                    # The caption loss is then a share (sum / tokens of the whole global batch) that the Trainer
                    # rescales by the number of processes; weigh the aux mean by this batch's share of those tokens
                    # so that it keeps its configured weight on any process and accumulation count.
                    aux = aux * (labels[..., 1:] != -100).sum() / num_items_in_batch
                loss = loss + aux
        return CCExpertCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            **_kv_cache(outputs),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=outputs.image_hidden_states,
        )

    def change_mask_loss(
        self, change_states: torch.Tensor, image_features: torch.Tensor, change_mask: torch.Tensor
    ) -> torch.Tensor:
        """Sum of two binary cross-entropies against `change_mask` [B, N] (a token's patch is changed when its fraction
        >= `change_mask_min_fraction`; samples < 0 are skipped): the head on the DIM's change stream [B, N, D] (where
        the two images are compared token by token) and the head on both images' projected tokens [B, 2, N, H] (what
        the LLM reads, so the change is carried into them)."""
        if change_mask.shape != change_states.shape[:2]:
            raise ValueError(
                f"change_mask must be [batch, {change_states.shape[1]}] (one value per image token), "
                f"got {tuple(change_mask.shape)}"
            )
        if self.change_mask_head is None or self.change_mask_token_head is None:
            raise ValueError("the change-mask loss needs the heads that change_mask_loss_weight > 0 builds")
        change_logits = self.change_mask_head(change_states).squeeze(-1)  # [B, N]
        token_logits = self.change_mask_token_head(image_features).squeeze(-1)  # [B, 2, N]
        known = change_mask >= 0  # [B, N]
        if not known.any():  # keeps the heads in the graph (DeepSpeed expects a gradient for every param)
            return (change_logits.sum() + token_logits.sum()) * 0.0
        target = (change_mask >= self.config.change_mask_min_fraction).to(change_logits.dtype)  # [B, N]
        bce = nn.functional.binary_cross_entropy_with_logits
        change_loss = bce(change_logits[known], target[known])
        token_loss = bce(token_logits.transpose(0, 1)[:, known], target[known].expand(2, -1))
        return change_loss + token_loss


__all__ = [
    "CCExpertCausalLMOutputWithPast",
    "CCExpertDifferenceIntegration",
    "CCExpertForConditionalGeneration",
    "CCExpertModel",
    "CCExpertModelOutputWithPast",
    "CCExpertPreTrainedModel",
    "DifferenceBranch",
    "sine_position_encoding",
    "texture_difference",
    "texture_operators",
]
