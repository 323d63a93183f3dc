"""Frame-to-frame association of masks: IoU matrix + Hungarian assignment (scipy)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment


def _stack(masks: Sequence[np.ndarray], hw: tuple[int, int], what: str) -> np.ndarray:
    """(N, H*W) float32 rows; masks of another size are resized (nearest) to ``hw``."""
    rows = np.zeros((len(masks), hw[0] * hw[1]), dtype=np.float32)
    for index, mask in enumerate(masks):
        array = np.asarray(mask)
        if array.ndim != 2 or array.dtype != bool:
            raise ValueError(
                f"{what}[{index}]: expected a 2-D bool mask, got {array.shape} {array.dtype}"
            )
        if array.shape != hw:
            resized = cv2.resize(
                array.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST
            )
            array = resized.astype(bool)
        rows[index] = array.reshape(-1)
    return rows


def mask_iou_matrix(
    track_masks: Sequence[np.ndarray], detection_masks: Sequence[np.ndarray]
) -> np.ndarray:
    """(T, D) intersection-over-union; an empty pair (both masks empty) scores 0.

    Detections fix the frame size; track masks from a frame of another size are resized to it.
    """
    if not track_masks or not detection_masks:
        return np.zeros((len(track_masks), len(detection_masks)), dtype=np.float32)
    hw = tuple(np.asarray(detection_masks[0]).shape)
    if len(hw) != 2:
        raise ValueError(f"detection_masks[0]: expected a 2-D bool mask, got shape {hw}")
    tracks = _stack(track_masks, hw, "track_masks")
    detections = _stack(detection_masks, hw, "detection_masks")
    intersection = tracks @ detections.T
    union = tracks.sum(axis=1)[:, None] + detections.sum(axis=1)[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1.0), 0.0).astype(np.float32)


def match_by_iou(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Hungarian assignment maximising total IoU; pairs below ``min_iou`` are not matches.

    Returns ``(track_index, detection_index)`` pairs sorted by track index; every track and
    every detection appears at most once.
    """
    matrix = np.asarray(iou, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"iou must be a (tracks, detections) matrix, got shape {matrix.shape}")
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    if matrix.size == 0:
        return []
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if matrix[r, c] >= min_iou]
