"""RSICCLLM's difference-aware branch: an explicit pixel/texture change signal added to the vision features.

Enabled by ``CCExpertConfig.diff_branch`` (off by default: no parameters, so official checkpoints load unchanged).
For a batch of B pairs (full size: 384 px, patch 14, N = 27 * 27 = 729 tokens, D = 1152):

    pixel_values [B, 2, 3, 384, 384] (SigLIP-normalised, image 0 = before, 1 = after)
      T  = after - before                                  [B, 3, 384, 384]  pixel difference
      S_t = 8 fixed 3x3 operators on the grey image t       [B, 8, 384, 384]  texture responses
      dS = (S_after - S_before) / (|S_before|_1 + |S_after|_1 + eps)   (L1 over the 8 operators, per pixel)
      patch-embed both to the vision grid (conv, kernel = stride = patch) -> T_e, dS_e [B, N, D], + 2-D sine positions
      F  = softmax(q(T_e) k(dS_e)^T / sqrt(d)) v(dS_e)      multi-head cross-attention, the difference is the query
      V_before += g_before * F,  V_after += g_after * F     before the projector; g per channel, zero at init

The eight operators (plain, central difference, four one-sided directional differences, two symmetric gradients)
follow the paper's description (``../shared/reference/rsiccllm.md``). All but the plain one sum to zero, so they do not
respond to a uniform brightness offset, and the normalised difference dS lies in [-1, 1] whatever the contrast.
The gates start at zero, so switching the branch on over an SFT checkpoint starts from exactly that checkpoint's
outputs and the branch learns how much to add.

**Hough projection: not built.** The paper projects each operator response to (rho, theta) Hough space and back
before differencing. Projecting an image onto lines and back-projecting without a filter is, in the continuum, a
convolution with a 1/r kernel (a fixed isotropic blur), so it adds no information the learned patch encoder cannot
take from the raw responses, while it costs O(H * W * n_theta) per operator and image and brings bin choices the
paper does not give. Its ablation gain is the smallest of the parts (0.24 BLEU-4 without the texture statistic).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from transformers import initialization as init

from .modeling_ccexpert import CCExpertDIMAttention, sine_position_encoding


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

    _is_difference_branch = True  # CCExpertPreTrainedModel._init_weights looks for this to zero the gates

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
