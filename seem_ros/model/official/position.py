"""The sine position embedding of DETR / Mask2Former, as the official SEEM code uses it.

Unlike :func:`seem_ros.model.position.sine_position_map` (our own models' encoding), this one
counts pixels from 1, normalises by the last row/column and pairs sines and cosines of the same
frequency, so it reproduces the official pixel decoder's and decoder's positions exactly.
"""

from __future__ import annotations

import math

import torch


def sine_position_embedding(
    height: int,
    width: int,
    num_pos_feats: int,
    *,
    temperature: float = 10000.0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(2 * num_pos_feats, height, width): y encodings first, then x (normalised to 2*pi)."""
    eps = 1e-6
    scale = 2 * math.pi
    y_embed = torch.arange(1, height + 1, device=device, dtype=dtype)
    x_embed = torch.arange(1, width + 1, device=device, dtype=dtype)
    y_embed = y_embed / (y_embed[-1:] + eps) * scale
    x_embed = x_embed / (x_embed[-1:] + eps) * scale
    steps = torch.arange(num_pos_feats, device=device, dtype=dtype)
    dim_t = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / num_pos_feats)
    pos_y = _interleave(y_embed[:, None] / dim_t)  # (H, F)
    pos_x = _interleave(x_embed[:, None] / dim_t)  # (W, F)
    grid_y = pos_y[:, None, :].expand(height, width, num_pos_feats)
    grid_x = pos_x[None, :, :].expand(height, width, num_pos_feats)
    return torch.cat([grid_y, grid_x], dim=-1).permute(2, 0, 1).contiguous()


def _interleave(angles: torch.Tensor) -> torch.Tensor:
    """(N, F) angles -> (N, F): sin of even columns and cos of odd columns, interleaved."""
    return torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=-1).flatten(1)
