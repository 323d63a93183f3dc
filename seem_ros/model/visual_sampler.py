"""Visual sampler: points, boxes, scribbles, masks and reference regions -> prompt tokens.

Every visual prompt is a fixed number ``S`` of sample locations (padded and masked), so the
decoder graph has static shapes and exports to ONNX. The sampler reads the mask features at
those locations (bilinear), adds an embedding of where each sample is, pools the valid samples
into one token, and adds learned embeddings of the prompt's kind and polarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .position import CoordinateEmbedding
from .prompt_tensors import PROMPT_KINDS


def sample_features(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """features (B, D, H, W), coords (B, ..., 2) in [0, 1] (x, y) -> (B, ..., D)."""
    batch, dim = features.shape[:2]
    inner = coords.shape[1:-1]
    grid = (coords.reshape(batch, -1, 1, 2) * 2.0 - 1.0).to(features.dtype)
    sampled = F.grid_sample(features, grid, mode="bilinear", align_corners=False)  # B, D, M, 1
    return sampled.squeeze(-1).transpose(1, 2).reshape(batch, *inner, dim)


def masked_mean(values: torch.Tensor, valid: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` counting only ``valid`` (float 0/1) entries."""
    weights = valid.unsqueeze(-1)
    total = (values * weights).sum(dim=dim)
    count = weights.sum(dim=dim).clamp(min=1.0)
    return total / count


class VisualSampler(nn.Module):
    """Turns sampled locations into prompt tokens.

    Args:
        dim: token width D (= mask feature channels).
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.where = CoordinateEmbedding(dim)
        self.kind_embed = nn.Parameter(torch.randn(len(PROMPT_KINDS), dim) * 0.02)
        self.positive_embed = nn.Parameter(torch.randn(dim) * 0.02)
        self.negative_embed = nn.Parameter(torch.randn(dim) * 0.02)
        self.reference_embed = nn.Parameter(torch.randn(dim) * 0.02)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        mask_features: torch.Tensor,
        coords: torch.Tensor,
        sample_valid: torch.Tensor,
        kind: torch.Tensor,
        positive: torch.Tensor,
    ) -> torch.Tensor:
        """Prompts on the image the features come from.

        Args:
            mask_features: (B, D, H, W).
            coords: (B, G, P, S, 2) sample locations, (x, y) in [0, 1] of the model input.
            sample_valid: (B, G, P, S) 1.0 where a sample is real, 0.0 for padding.
            kind: (B, G, P, 4) one-hot prompt kind (point, box, scribble, mask).
            positive: (B, G, P) 1.0 for positive prompts, 0.0 for negative ones.
        Returns:
            (B, G, P, D) prompt tokens (padding prompts get finite, unused tokens).
        """
        sampled = sample_features(mask_features, coords) + self.where(coords)
        pooled = masked_mean(sampled, sample_valid, dim=-2)
        polarity = positive.unsqueeze(-1)
        token = (
            self.proj(pooled)
            + kind @ self.kind_embed
            + polarity * self.positive_embed
            + (1.0 - polarity) * self.negative_embed
        )
        return self.norm(token)

    def reference(
        self, mask_features: torch.Tensor, coords: torch.Tensor, sample_valid: torch.Tensor
    ) -> torch.Tensor:
        """A region of another image -> (B, D) tokens; where it was in that image is irrelevant.

        Args:
            mask_features: (B, D, H, W) features of the reference image.
            coords: (B, S, 2) samples inside the region; sample_valid: (B, S).
        """
        pooled = masked_mean(sample_features(mask_features, coords), sample_valid, dim=-2)
        return self.norm(self.proj(pooled) + self.reference_embed)
