"""The few tensor operations the runtime's heads need, in numpy (float32, as PyTorch computes).

Each mirrors one PyTorch call of the model code it replaces, with the same conventions, so the
two paths agree to float rounding (``test/test_runtime.py`` compares them).
"""

from __future__ import annotations

import numpy as np


def grid_sample(features: np.ndarray, grid: np.ndarray, *, align_corners: bool) -> np.ndarray:
    """``F.grid_sample(features[None], grid[None, :, None], mode="bilinear",
    padding_mode="zeros")``: features (C, H, W) sampled at grid (N, 2) x, y in [-1, 1] ->
    (N, C); samples outside the map read zeros."""
    channels, height, width = features.shape
    grid = np.asarray(grid, dtype=np.float32).reshape(-1, 2)
    if align_corners:
        x = (grid[:, 0] + 1.0) / 2.0 * (width - 1)
        y = (grid[:, 1] + 1.0) / 2.0 * (height - 1)
    else:
        x = ((grid[:, 0] + 1.0) * width - 1.0) / 2.0
        y = ((grid[:, 1] + 1.0) * height - 1.0) / 2.0
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros((len(grid), channels), dtype=np.float32)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xs, ys = x0 + dx, y0 + dy
            inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
            weight = (wx * wy * inside).astype(np.float32)
            values = features[:, np.clip(ys, 0, height - 1), np.clip(xs, 0, width - 1)]
            out += values.T * weight[:, None]
    return out


def masked_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, D) values, (N,) float 0/1 -> (D,) mean over the valid rows (zero rows count as 1,
    as ``seem_ros.model.visual_sampler.masked_mean`` does)."""
    weights = np.asarray(valid, dtype=np.float32)[:, None]
    return (values * weights).sum(axis=0) / max(float(weights.sum()), 1.0)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """``nn.LayerNorm`` over the last axis (biased variance)."""
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(variance + eps) * weight + bias).astype(np.float32)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``nn.Linear``: x (..., in) @ weight (out, in).T + bias."""
    return (x @ weight.T + bias).astype(np.float32)


def unit_rows(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """Rows divided by their L2 norm (+ ``eps``)."""
    return (x / (np.linalg.norm(x, axis=-1, keepdims=True) + eps)).astype(np.float32)
