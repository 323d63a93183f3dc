"""The pixel decoder of the SAM-backbone SEEM v1 checkpoints (upstream
``transformer_encoder_deform``, Mask2Former's ``MSDeformAttnPixelDecoder``).

res3..res5 are projected to ``conv_dim`` and refined together by a 6-layer encoder of
multi-scale deformable attention (Deformable DETR); res2 joins through one FPN step; the mask
features are a 1x1 conv on that finest level. Written in plain PyTorch with the upstream
parameter names: the deformable-attention core samples with ``F.grid_sample`` (the arithmetic
of upstream's pure-PyTorch reference, which upstream itself falls back to without its compiled
op), so it runs on CPU and CUDA and exports to ONNX (GridSample, opset >= 16).

Upstream runs this decoder in float32 with autocast disabled; here it runs in the dtype of its
parameters and inputs (float32 in seem_ros's PyTorch path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seem_ros.model.official.pixel_decoder import NormConv2d
from seem_ros.model.official.position import sine_position_embedding

DEFORM_ENCODER_FFN_DIM = 1024
"""Upstream hard-codes the deformable encoder's FFN width (``DIM_FEEDFORWARD`` of the YAML
sizes the SEEM decoder only)."""


def deformable_sampling(
    value: torch.Tensor,
    shapes: Sequence[tuple[int, int]],
    locations: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """The core of multi-scale deformable attention.

    Args:
        value: (B, S, heads, d) per-head values of all levels, flattened level after level
            (S = sum of h * w).
        shapes: (h, w) of each level, in the order of ``value``.
        locations: (B, Q, heads, levels, points, 2) sampling points as (x, y) in [0, 1] of
            each level (0 and 1 are the outer edges of the border pixels).
        weights: (B, Q, heads, levels, points) attention weights.

    Returns:
        (B, Q, heads * d): per query and head the weighted sum of the bilinearly sampled values
        (zero outside the map; ``align_corners=False``).
    """
    batch, _, heads, dim = value.shape
    queries, points = locations.shape[1], locations.shape[4]
    grids = 2.0 * locations - 1.0
    out = value.new_zeros(batch * heads, dim, queries)
    start = 0
    for level, (height, width) in enumerate(shapes):
        # (B, hw, heads, d) -> (B * heads, d, h, w)
        level_value = value[:, start : start + height * width]
        level_value = level_value.permute(0, 2, 3, 1).reshape(batch * heads, dim, height, width)
        start += height * width
        # (B, Q, heads, P, 2) -> (B * heads, Q, P, 2)
        grid = grids[:, :, :, level].transpose(1, 2).reshape(batch * heads, queries, points, 2)
        sampled = F.grid_sample(
            level_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (B * heads, d, Q, P)
        level_weights = weights[:, :, :, level].transpose(1, 2)
        level_weights = level_weights.reshape(batch * heads, queries, points)
        out = out + torch.einsum("ndqp,nqp->ndq", sampled, level_weights)
    # (B * heads, d, Q) -> (B, Q, heads * d)
    return out.reshape(batch, heads * dim, queries).transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Deformable DETR) with one reference point per query.

    Args:
        dim: model width; num_levels, num_heads, num_points: levels attended, heads, and
            sampling points per head and level.

    ``forward``: query (B, Q, dim), reference points (B, Q, levels, 2) as (x, y) in [0, 1],
    input (B, S, dim) flattened over the levels of ``shapes`` -> (B, Q, dim). Offsets are
    predicted in pixels of each level and normalised by its (w, h).
    """

    def __init__(self, *, dim: int, num_levels: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_levels = num_levels
        self.num_heads = num_heads
        self.num_points = num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        source: torch.Tensor,
        shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        batch, queries, _ = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        value = self.value_proj(source).reshape(batch, source.shape[1], heads, -1)
        offsets = self.sampling_offsets(query).reshape(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).reshape(batch, queries, heads, levels * points)
        weights = weights.softmax(-1).reshape(batch, queries, heads, levels, points)
        # (x, y) offsets in pixels -> fractions of each level's width and height
        normaliser = torch.tensor(
            [[width, height] for height, width in shapes], dtype=query.dtype, device=query.device
        )
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normaliser[None, None, None, :, None, :]
        )
        return self.output_proj(deformable_sampling(value, shapes, locations, weights))


class DeformEncoderLayer(nn.Module):
    """Post-norm encoder layer: ``norm1(x + attn(x + pos, ref, x))``, then
    ``norm2(x + linear2(relu(linear1(x))))``."""

    def __init__(
        self, *, dim: int, num_heads: int, num_levels: int, num_points: int, dim_feedforward: int
    ) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(
            dim=dim, num_levels=num_levels, num_heads=num_heads, num_points=num_points
        )
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        """tokens (B, S, C), positions (1 or B, S, C), reference points (1 or B, S, levels, 2)
        -> (B, S, C)."""
        x = self.norm1(x + self.self_attn(x + pos, reference_points, x, shapes))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class DeformEncoder(nn.Module):
    """A stack of :class:`DeformEncoderLayer` (held as ``layers``)."""

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        num_levels: int,
        num_points: int,
        dim_feedforward: int,
        num_layers: int,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DeformEncoderLayer(
                dim=dim,
                num_heads=num_heads,
                num_levels=num_levels,
                num_points=num_points,
                dim_feedforward=dim_feedforward,
            )
            for _ in range(num_layers)
        )

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos, reference_points, shapes)
        return x


def reference_points(
    shapes: Sequence[tuple[int, int]], *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(1, S, levels, 2): every pixel's centre as (x, y) in [0, 1] of its level, the same
    point for every level (no padding masks, so upstream's valid ratios are all 1)."""
    points = []
    for height, width in shapes:
        y = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
        x = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
        grid = torch.stack(
            (x[None, :].expand(height, width), y[:, None].expand(height, width)), dim=-1
        )
        points.append(grid.reshape(height * width, 2))
    flat = torch.cat(points)  # (S, 2)
    return flat[None, :, None, :].expand(1, flat.shape[0], len(shapes), 2)


class DeformEncoderOnly(nn.Module):
    """The deformable encoder over several maps (``encoder``, ``level_embed``, upstream names).

    ``forward``: maps [(B, C, h_l, w_l)] and their positions [(C, h_l, w_l)] -> (B, S, C)
    tokens of all levels, flattened level after level (S = sum of h_l * w_l). Each level's
    learnt ``level_embed`` row is added to its positions.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        num_levels: int,
        num_points: int,
        dim_feedforward: int,
        num_layers: int,
    ) -> None:
        super().__init__()
        self.encoder = DeformEncoder(
            dim=dim,
            num_heads=num_heads,
            num_levels=num_levels,
            num_points=num_points,
            dim_feedforward=dim_feedforward,
            num_layers=num_layers,
        )
        self.level_embed = nn.Parameter(torch.zeros(num_levels, dim))

    def forward(
        self, maps: Sequence[torch.Tensor], positions: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        shapes = [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]
        tokens = torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)
        pos = torch.cat(
            [
                p.flatten(1).transpose(0, 1)[None] + self.level_embed[level][None, None]
                for level, p in enumerate(positions)
            ],
            dim=1,
        )
        ref = reference_points(shapes, device=tokens.device, dtype=tokens.dtype)
        return self.encoder(tokens, pos, ref, shapes)


class MSDeformAttnPixelDecoder(nn.Module):
    """The deformable-attention pixel decoder.

    Args:
        in_channels: channels of the backbone maps res2..res5 (finest first), e.g.
            ``(128, 256, 512, 1024)`` for the SAM ViT neck.
        conv_dim: channels of every level (``ENCODER.CONVS_DIM``).
        mask_dim: channels of the mask features (``ENCODER.MASK_DIM``).
        num_heads: encoder attention heads (``DECODER.NHEADS``).
        dim_feedforward: encoder FFN width (upstream hard-codes 1024).
        num_encoder_layers: encoder depth (``ENCODER.TRANSFORMER_ENC_LAYERS``).
        num_transformer_levels: how many of the coarsest maps the encoder refines
            (``DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES``: res3..res5, so 3); the finer ones
            join by FPN steps (one, res2, at ``COMMON_STRIDE: 4``).
        num_points: sampling points per head and level (4).
        num_groups: GroupNorm groups (32).

    Modules, named as upstream: ``input_proj.<i>`` (1x1 conv with bias + GN) on the i-th
    coarsest encoder input (``input_proj.0`` on res5); ``transformer`` (``level_embed``,
    ``encoder.layers``); ``adapter_<i>`` (1x1 conv + GN, no bias) and ``layer_<i>`` (3x3 conv +
    GN + ReLU) for the FPN levels, ``adapter_1`` on res2; ``mask_features`` (1x1 conv).

    ``forward``: ``{"res2": (B, C0, H/4, W/4), ..., "res5": (B, C3, H/32, W/32)}`` ->
    ``(mask_features (B, mask_dim, H/4, W/4), [(B, conv_dim, H/32, W/32), (B, conv_dim, H/16,
    W/16), (B, conv_dim, H/8, W/8)])``: the encoder's output maps, coarsest first, the same
    order as :class:`~seem_ros.model.official.pixel_decoder.TransformerEncoderPixelDecoder`
    (and upstream's ``multi_scale_features``). The FPN step upsamples bilinearly
    (``align_corners=False``), as upstream.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        conv_dim: int = 512,
        mask_dim: int = 512,
        num_heads: int = 8,
        dim_feedforward: int = DEFORM_ENCODER_FFN_DIM,
        num_encoder_layers: int = 6,
        num_transformer_levels: int = 3,
        num_points: int = 4,
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        num_levels = len(in_channels)
        if not 1 <= num_transformer_levels <= num_levels:
            raise ValueError(
                f"num_transformer_levels must be in 1..{num_levels}, got {num_transformer_levels}"
            )
        self.in_features = tuple(f"res{index + 2}" for index in range(num_levels))
        self.num_fpn_levels = num_levels - num_transformer_levels
        self.conv_dim = conv_dim
        self.num_feature_levels = 3  # upstream: "always use 3 scales"
        # coarsest first: input_proj.0 takes res5
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, conv_dim, 1), nn.GroupNorm(num_groups, conv_dim))
            for channels in reversed(in_channels[self.num_fpn_levels :])
        )
        self.transformer = DeformEncoderOnly(
            dim=conv_dim,
            num_heads=num_heads,
            num_levels=num_transformer_levels,
            num_points=num_points,
            dim_feedforward=dim_feedforward,
            num_layers=num_encoder_layers,
        )
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, 1)
        for index, channels in enumerate(in_channels[: self.num_fpn_levels], start=1):
            adapter = NormConv2d(
                channels, conv_dim, 1, bias=False, norm=nn.GroupNorm(num_groups, conv_dim)
            )
            layer = NormConv2d(
                conv_dim,
                conv_dim,
                3,
                padding=1,
                bias=False,
                norm=nn.GroupNorm(num_groups, conv_dim),
                relu=True,
            )
            self.add_module(f"adapter_{index}", adapter)
            self.add_module(f"layer_{index}", layer)

    def forward(
        self, features: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        encoder_names = self.in_features[self.num_fpn_levels :][::-1]  # res5, res4, res3
        maps, positions = [], []
        for proj, name in zip(self.input_proj, encoder_names):
            feature = features[name]
            maps.append(proj(feature))
            positions.append(
                sine_position_embedding(
                    feature.shape[-2],
                    feature.shape[-1],
                    self.conv_dim // 2,
                    device=feature.device,
                    dtype=feature.dtype,
                )
            )
        memory = self.transformer(maps, positions)  # (B, S, C)
        batch = memory.shape[0]
        levels: list[torch.Tensor] = []
        start = 0
        for level_map in maps:
            height, width = level_map.shape[-2:]
            tokens = memory[:, start : start + height * width]
            start += height * width
            levels.append(tokens.transpose(1, 2).reshape(batch, self.conv_dim, height, width))
        y = levels[-1]
        for index in range(self.num_fpn_levels, 0, -1):  # top-down: adapter_<n> ... adapter_1
            lateral = getattr(self, f"adapter_{index}")(features[self.in_features[index - 1]])
            y = lateral + F.interpolate(
                y, size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            y = getattr(self, f"layer_{index}")(y)
            levels.append(y)
        return self.mask_features(y), levels[: self.num_feature_levels]
