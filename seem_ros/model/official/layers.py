"""The decoder's building blocks, with the parameter names of the official checkpoints.

``PackedAttention`` stores its projections as ``in_proj_weight`` / ``in_proj_bias`` /
``out_proj`` like ``nn.MultiheadAttention`` (so official weights load as they are), but works
batch-first and takes an additive bias instead of boolean masks: the same arithmetic, and a
form that exports to ONNX without bool inputs.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

# Large but FP16-safe: a key with this bias gets exactly zero weight in half and single precision.
BLOCKED = -1.0e4


class PackedAttention(nn.Module):
    """Multi-head attention with one packed q/k/v projection.

    Args:
        dim: model width D; num_heads: heads (must divide D).
    """

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def project(self, x: torch.Tensor, which: int) -> torch.Tensor:
        """(B, N, D) -> (B, heads, N, D / heads) with projection 0 = query, 1 = key, 2 = value."""
        dim = x.shape[-1]
        weight = self.in_proj_weight[which * dim : (which + 1) * dim]
        bias = self.in_proj_bias[which * dim : (which + 1) * dim]
        batch, length, _ = x.shape
        projected = F.linear(x, weight, bias)
        return projected.reshape(batch, length, self.num_heads, -1).transpose(1, 2)

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected q (B, H, Nq, d), k/v (B, H, Nk, d), bias broadcastable to (B, H, Nq, Nk)
        (0 = attend, :data:`BLOCKED` = not) -> (B, Nq, D) after the output projection."""
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        batch, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, -1))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query (B, Nq, D), key/value (B, Nk, D) -> (B, Nq, D)."""
        return self.attend(
            self.project(query, 0), self.project(key, 1), self.project(value, 2), bias
        )


class SelfAttentionLayer(nn.Module):
    """Post-norm self-attention: ``norm(x + attn(x + pos, x + pos, x))``."""

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self_attn = PackedAttention(dim=dim, num_heads=num_heads)
        self.norm = nn.LayerNorm(dim)


class CrossAttentionLayer(nn.Module):
    """Post-norm cross-attention: ``norm(x + attn(x + pos, memory + memory_pos, memory))``."""

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.multihead_attn = PackedAttention(dim=dim, num_heads=num_heads)
        self.norm = nn.LayerNorm(dim)


class FFNLayer(nn.Module):
    """Post-norm feed-forward: ``norm(x + linear2(relu(linear1(x))))``."""

    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    """``layers`` linear maps with ReLU between them (the mask-embedding head)."""

    def __init__(self, *, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        sizes = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x
