"""Ground truth of procedural scenes on the model's mask grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..data.scene import Scene
from ..transforms import ResizeTransform


def to_grid(mask: np.ndarray, grid: int) -> np.ndarray:
    """(H, W) bool -> (grid, grid) float coverage (area average) of the model input: a square
    mask fills the grid; a non-square one is letterboxed like its image (top left, the rest 0)."""
    height, width = mask.shape
    if height == width:
        return cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    return ResizeTransform(height, width, max(height, width)).mask_to_grid(mask, grid)


@dataclass
class GenericTargets:
    """Every segment (things and stuff) of one image: coverage masks and class indices."""

    masks: np.ndarray  # (M, g, g) float
    labels: np.ndarray  # (M,) int64 into the class vocabulary


def generic_targets(scene: Scene, vocabulary: Sequence[str], grid: int) -> GenericTargets:
    index = {name: i for i, name in enumerate(vocabulary)}
    masks = [to_grid(s.mask, grid) for s in scene.segments]
    labels = [index[s.category] for s in scene.segments]
    return GenericTargets(np.stack(masks).astype(np.float32), np.asarray(labels, dtype=np.int64))
