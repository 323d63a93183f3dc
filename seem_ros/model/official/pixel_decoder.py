"""The pixel decoder of the official SEEM v1 checkpoints (upstream ``transformer_encoder_fpn``).

A feature pyramid over res2..res5 whose coarsest level first goes through a 6-layer post-norm
transformer encoder with sine positions (Mask2Former's ``TransformerEncoderPixelDecoder``),
written in plain PyTorch with the upstream parameter names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seem_ros.model.official.position import sine_position_embedding


class NormConv2d(nn.Conv2d):
    """Conv2d, then an optional norm (a child named ``norm``), then an optional ReLU.

    A subclass rather than a Sequential so the parameter names come out as upstream's
    detectron2 ``Conv2d`` gives them: ``<name>.weight`` and ``<name>.norm.weight``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        padding: int = 0,
        bias: bool = True,
        norm: nn.Module | None = None,
        relu: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
        self.norm = norm
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


class TransformerEncoderLayer(nn.Module):
    """Post-norm self-attention + ReLU FFN layer; positions are added to queries and keys only.

    ``forward``: tokens (B, N, C) and positions (B or 1, N, C) -> (B, N, C).
    """

    def __init__(self, *, dim: int, num_heads: int, dim_feedforward: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        query_key = x + pos
        attended = self.self_attn(query_key, query_key, x, need_weights=False)[0]
        x = self.norm1(x + attended)
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerEncoderLayer` (no final norm: upstream is post-norm)."""

    def __init__(self, *, dim: int, num_heads: int, dim_feedforward: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(dim=dim, num_heads=num_heads, dim_feedforward=dim_feedforward)
            for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return x


class TransformerEncoderOnly(nn.Module):
    """Runs :class:`TransformerEncoder` (held as ``encoder``, the upstream name) on a map.

    ``forward``: map (B, C, H, W) and positions (C, H, W) -> (B, C, H, W).
    """

    def __init__(self, *, dim: int, num_heads: int, dim_feedforward: int, num_layers: int) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(
            dim=dim, num_heads=num_heads, dim_feedforward=dim_feedforward, num_layers=num_layers
        )

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # B, HW, C
        pos_tokens = pos.flatten(1).transpose(0, 1).unsqueeze(0)  # 1, HW, C
        memory = self.encoder(tokens, pos_tokens)
        return memory.transpose(1, 2).reshape(batch, channels, height, width)


class TransformerEncoderPixelDecoder(nn.Module):
    """FPN pixel decoder with a transformer encoder on the coarsest level.

    Args:
        in_channels: channels of the backbone maps res2, res3, ... (finest first), e.g.
            ``(96, 192, 384, 768)`` for FocalNet-T.
        conv_dim: channels of every pyramid level (``ENCODER.CONVS_DIM``).
        mask_dim: channels of the mask features (``ENCODER.MASK_DIM``).
        num_heads: encoder attention heads (``DECODER.NHEADS``).
        dim_feedforward: encoder FFN width (``DECODER.DIM_FEEDFORWARD``).
        num_encoder_layers: encoder depth (``ENCODER.TRANSFORMER_ENC_LAYERS``).
        num_groups: GroupNorm groups (upstream ``NORM: "GN"`` is 32 groups).
        num_feature_levels: how many pyramid levels, coarsest first, are returned.

    Modules, named as upstream: ``adapter_<i>`` (1x1 conv + GN) on the i-th finest map,
    ``layer_<i>`` (3x3 conv + GN + ReLU) after the top-down sum at that level; the coarsest map
    instead goes ``input_proj`` (1x1 conv) -> ``transformer`` -> ``layer_<n>``;
    ``mask_features`` (3x3 conv) on the finest level.

    ``forward``: ``{"res2": (B, C0, H/4, W/4), ..., "res5": (B, C3, H/32, W/32)}`` ->
    ``(mask_features (B, mask_dim, H/4, W/4), [(B, conv_dim, H/32, W/32),
    (B, conv_dim, H/16, W/16), (B, conv_dim, H/8, W/8)])``: the multi-scale maps in upstream
    order, coarsest first. Upsampling in the pyramid is nearest-neighbour, as upstream.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        conv_dim: int = 512,
        mask_dim: int = 512,
        num_heads: int = 8,
        dim_feedforward: int = 2048,
        num_encoder_layers: int = 6,
        num_groups: int = 32,
        num_feature_levels: int = 3,
    ) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise ValueError("the pixel decoder needs at least two backbone levels")
        self.in_features = tuple(f"res{index + 2}" for index in range(len(in_channels)))
        self.num_feature_levels = num_feature_levels
        self.conv_dim = conv_dim
        num_levels = len(in_channels)
        for index, channels in enumerate(in_channels[:-1], start=1):
            adapter = NormConv2d(
                channels, conv_dim, 1, bias=False, norm=nn.GroupNorm(num_groups, conv_dim)
            )
            self.add_module(f"adapter_{index}", adapter)
            self.add_module(f"layer_{index}", self._output_conv(conv_dim, num_groups))
        self.input_proj = nn.Conv2d(in_channels[-1], conv_dim, 1)
        self.transformer = TransformerEncoderOnly(
            dim=conv_dim,
            num_heads=num_heads,
            dim_feedforward=dim_feedforward,
            num_layers=num_encoder_layers,
        )
        self.add_module(f"layer_{num_levels}", self._output_conv(conv_dim, num_groups))
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, 3, padding=1)

    @staticmethod
    def _output_conv(conv_dim: int, num_groups: int) -> NormConv2d:
        return NormConv2d(
            conv_dim,
            conv_dim,
            3,
            padding=1,
            bias=False,
            norm=nn.GroupNorm(num_groups, conv_dim),
            relu=True,
        )

    def forward(
        self, features: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        num_levels = len(self.in_features)
        coarsest = features[self.in_features[-1]]
        height, width = coarsest.shape[-2:]
        # as upstream: no padding mask, positions computed in the features' dtype
        pos = sine_position_embedding(
            height, width, self.conv_dim // 2, device=coarsest.device, dtype=coarsest.dtype
        )
        memory = self.transformer(self.input_proj(coarsest), pos)
        y = getattr(self, f"layer_{num_levels}")(memory)
        multi_scale = [y]
        for index in range(num_levels - 1, 0, -1):  # top-down, adapter_<n-1> ... adapter_1
            lateral = getattr(self, f"adapter_{index}")(features[self.in_features[index - 1]])
            y = lateral + F.interpolate(y, size=lateral.shape[-2:], mode="nearest")
            y = getattr(self, f"layer_{index}")(y)
            if len(multi_scale) < self.num_feature_levels:
                multi_scale.append(y)
        return self.mask_features(y), multi_scale
