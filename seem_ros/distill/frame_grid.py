"""Moving masks between a model's input grid and the frame-aligned grid the shards use.

A model's masks live on a grid over its *padded input* (ours keep the frame's aspect and pad to
multiples of 32, or to the widest input of a batch; the official ones pad to multiples of 32);
shards store masks on a grid over the *frame* itself
(:func:`~seem_ros.distill.record.frame_grid_hw`). The map between the two is linear, so it is
two small matrices: ``rows @ logits @ cols.T``. The same matrices, as torch tensors, carry a
student's logits onto the teacher's grid inside the loss, with gradients.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..transforms import ResizeTransform


def area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in): each output cell is the mean of the input cells it overlaps,
    weighted by overlap (area resampling along one axis)."""
    edges_out = np.arange(size_out + 1) * (size_in / size_out)
    matrix = np.zeros((size_out, size_in), dtype=np.float64)
    for row in range(size_out):
        start, stop = edges_out[row], edges_out[row + 1]
        first, last = int(np.floor(start)), min(size_in, int(np.ceil(stop)))
        for column in range(first, last):
            overlap = min(stop, column + 1) - max(start, column)
            if overlap > 0:
                matrix[row, column] = overlap
        matrix[row] /= matrix[row].sum()
    return matrix


def model_grid_to_frame_grid(
    transform: ResizeTransform, model_grid_hw: tuple[int, int], frame_grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(rows (gh, g_h), cols (gw, g_w)) float32: model-grid logits -> frame-grid logits, the
    model's own up-sampling to the frame followed by area averaging down to the frame grid."""
    up_rows, up_cols = transform.upsampling_matrices(model_grid_hw)
    rows = area_matrix(transform.height, frame_grid[0]) @ up_rows.astype(np.float64)
    cols = area_matrix(transform.width, frame_grid[1]) @ up_cols.astype(np.float64)
    return rows.astype(np.float32), cols.astype(np.float32)


def to_frame_grid(logits: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(M, g_h, g_w) -> (M, gh, gw) with the matrices of :func:`model_grid_to_frame_grid`."""
    return np.einsum("yh,mhw,xw->myx", rows, logits.astype(np.float32), cols, optimize=True)


def coverage(mask: np.ndarray, frame_grid: tuple[int, int]) -> np.ndarray:
    """A full-size boolean mask -> its area coverage on the frame grid, 0..255 uint8."""
    small = cv2.resize(
        mask.astype(np.float32), (frame_grid[1], frame_grid[0]), interpolation=cv2.INTER_AREA
    )
    return np.clip(np.round(small * 255.0), 0, 255).astype(np.uint8)
