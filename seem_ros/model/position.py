"""Sine position encodings for feature maps and for prompt coordinates."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn


@lru_cache(maxsize=32)
def sine_position_map(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """(dim, H, W) fixed 2-D sine/cosine encoding of normalised pixel centres (DETR style).

    Cached: a map depends only on its arguments, and every decode needs the same few maps.
    Callers must not modify the returned tensor in place. It is
    built outside inference mode so a map first made under ``torch.inference_mode`` still works
    in a later autograd-tracked (training) pass.
    """
    with torch.inference_mode(False), torch.no_grad():
        return _sine_position_map(height, width, dim, device)


def _sine_position_map(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([grid_x, grid_y], dim=-1)  # H, W, 2
    return fourier_encode(coords, dim).permute(2, 0, 1)


def fourier_encode(coords: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., 2) coordinates in [0, 1] -> (..., dim) sine features; dim must be divisible by 4."""
    if dim % 4:
        raise ValueError(f"position encoding size {dim} must be divisible by 4")
    quarter = dim // 4
    # geometric frequencies from 1 to 64 cycles across the image: coarse layout to ~4 px detail
    freqs = torch.exp(torch.linspace(0.0, math.log(64.0), quarter, device=coords.device))
    angles = coords.unsqueeze(-1) * (2 * math.pi) * freqs
    enc = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., 2, dim/2)
    return enc.flatten(-2)


class CoordinateEmbedding(nn.Module):
    """Learned projection of Fourier features of normalised (x, y) coordinates."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(dim, dim)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.proj(fourier_encode(coords, self.dim))
