"""Multi-head attention with boolean "allowed" masks, written to export cleanly to ONNX/TensorRT."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

# Large but FP16-safe: softmax of (x - 1e4) is exactly 0 in half and single precision.
BLOCKED = -1.0e4


def head_width(dim: int, num_heads: int) -> int:
    """Width of each of ``num_heads`` heads over ``dim`` channels (which they must divide)."""
    if dim % num_heads:
        raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
    return dim // num_heads


class Attention(nn.Module):
    """Scaled dot-product attention; ``allowed`` (B, Nq, Nk) bool masks keys per query.

    Every query must have at least one allowed key; callers guarantee it.
    """

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_width(dim, num_heads)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query (B, Nq, D), key/value (B, Nk, D) -> (B, Nq, D)."""
        return self.attend_many([query], key, value, [allowed])[0]

    def attend_many(
        self,
        queries: list[torch.Tensor],
        key: torch.Tensor,
        value: torch.Tensor,
        allowed: list[torch.Tensor | None],
    ) -> list[torch.Tensor]:
        """Several query sets against the same keys/values, projected once; each set has its
        own ``allowed`` mask or None (attend everywhere: no bias to add, which is most of the
        cost of masking when many rows are unrestricted)."""
        k = self._split(self.k(key))
        v = self._split(self.v(value))
        results = []
        for query, set_allowed in zip(queries, allowed, strict=True):
            q = self._split(self.q(query)) * self.head_dim**-0.5
            scores = q @ k.transpose(-1, -2)
            if set_allowed is not None:
                # an additive bias, not masked_fill: exported, masked_fill is a Where broadcast
                # over the heads, which ONNX Runtime ran at ~1/4 of a 50-object decode; adding
                # BLOCKED gives the same softmax (exp(-1e4) is 0 in half and single precision)
                blocked = (~set_allowed).unsqueeze(1).to(scores.dtype) * BLOCKED
                scores = scores + blocked
            weights = scores.softmax(dim=-1)
            mixed = (weights @ v).transpose(1, 2).flatten(2)
            results.append(self.out(mixed))
        return results


class FeedForward(nn.Module):
    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLP(nn.Module):
    """A small multi-layer perceptron (used for mask embeddings and the score head)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index, (a, b) in enumerate(pairwise(dims)):
            layers.append(nn.Linear(a, b))
            if index < len(dims) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
