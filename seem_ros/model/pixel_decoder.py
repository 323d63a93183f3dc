"""Pixel decoder: backbone maps -> mask features (1/4) and three levels for cross-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4), channels)


class ContextBlock(nn.Module):
    """A residual pair of dilated 3x3 convolutions that widens what each pixel sees.

    Its last normalisation starts at zero scale, so a new block is the identity: weights
    trained without it load and give exactly their old outputs until it is trained.
    """

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            _norm(channels),
        )
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


CONTEXT_DILATIONS = (1, 2, 4, 8)


class PixelDecoder(nn.Module):
    """A feature pyramid (top-down + lateral) in the spirit of Mask2Former's pixel decoder.

    Args:
        in_channels: channels of the backbone maps at strides 4, 8, 16, 32.
        hidden_dim: channels of every output.
        context_blocks: :class:`ContextBlock` s on the stride-8 map before it feeds the mask
            features, with dilations cycling through 1, 2, 4, 8: Mask2Former widens each
            pixel's view with a deformable-attention encoder; at this size dilated
            convolutions do it on a CPU budget (a block at stride 8 costs a quarter of one at
            stride 4).

    ``forward`` returns ``(mask_features, [level_32, level_16, level_8])``: mask features
    (B, D, H/4, W/4) for mask prediction, and the coarse-to-fine maps the decoder attends to.
    """

    def __init__(
        self, *, in_channels: tuple[int, ...], hidden_dim: int, context_blocks: int = 0
    ) -> None:
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
        self.context = nn.Sequential(
            *(
                ContextBlock(hidden_dim, CONTEXT_DILATIONS[i % len(CONTEXT_DILATIONS)])
                for i in range(context_blocks)
            )
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
            if index == 1:
                top = self.context(top)
            outputs.append(top)
        # outputs: stride 32, 16, 8, 4
        mask_features = self.mask_proj(outputs[-1])
        return mask_features, outputs[:3]
