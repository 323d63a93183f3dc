"""detectron2.layers stand-ins: Conv2d with optional norm/activation, ShapeSpec, get_norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ShapeSpec:
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    stride: int | None = None


class Conv2d(nn.Conv2d):
    """nn.Conv2d followed by an optional ``norm`` module and ``activation`` callable.

    Same parameter names as detectron2's (``weight``, ``bias``, ``norm.*``) and the same order
    of operations: convolution, then norm, then activation.
    """

    def __init__(self, *args, **kwargs):
        norm = kwargs.pop("norm", None)
        activation = kwargs.pop("activation", None)
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class DeformConv(nn.Module):  # imported by transformer_encoder_fpn, never built there
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("DeformConv is not available in the parity harness")


def get_norm(norm, out_channels: int):
    """detectron2's get_norm for the names the official configs use ('GN', '' / None)."""
    if norm is None or norm == "":
        return None
    if not isinstance(norm, str):
        return norm(out_channels)
    if norm == "GN":
        return nn.GroupNorm(32, out_channels)
    if norm == "BN":
        return nn.BatchNorm2d(out_channels)
    if norm == "LN":
        return nn.GroupNorm(1, out_channels)
    raise NotImplementedError(f"norm {norm!r} is not in the parity harness's get_norm")


def cat(tensors, dim: int = 0) -> torch.Tensor:
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def shapes_to_tensor(x, device=None) -> torch.Tensor:
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        raise NotImplementedError
    return torch.as_tensor(x, device=device)
