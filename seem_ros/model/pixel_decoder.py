"""Pixel decoder: backbone maps -> mask features (1/4) and three levels for cross-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4), channels)


class PixelDecoder(nn.Module):
    """A feature pyramid (top-down + lateral) in the spirit of Mask2Former's pixel decoder.

    Args:
        in_channels: channels of the backbone maps at strides 4, 8, 16, 32.
        hidden_dim: channels of every output.

    ``forward`` returns ``(mask_features, [level_32, level_16, level_8])``: mask features
    (B, D, H/4, W/4) for mask prediction, and the coarse-to-fine maps the decoder attends to.
    """

    def __init__(self, *, in_channels: tuple[int, ...], hidden_dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, hidden_dim, 1, bias=False), _norm(hidden_dim))
            for c in in_channels
        )
        self.smooth = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, bias=False),
                _norm(hidden_dim),
                nn.ReLU(inplace=True),
            )
            for _ in in_channels
        )
        self.mask_proj = nn.Conv2d(hidden_dim, hidden_dim, 1)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outputs: list[torch.Tensor] = []
        top: torch.Tensor | None = None
        for index in range(len(features) - 1, -1, -1):
            lateral = self.lateral[index](features[index])
            if top is not None:
                lateral = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            top = self.smooth[index](lateral)
            outputs.append(top)
        # outputs: stride 32, 16, 8, 4
        mask_features = self.mask_proj(outputs[-1])
        return mask_features, outputs[:3]
