"""Ground truth of procedural scenes, kept at full resolution until the step knows the input
shape its batch is stacked in (then :meth:`GenericTargets.on_grid` puts it on the mask grid)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.scene import Scene
from ..transforms import ResizeTransform


@dataclass
class GenericTargets:
    """Every segment (things and stuff) of one image: masks and class indices."""

    masks: np.ndarray  # (M, H, W) bool
    labels: np.ndarray  # (M,) int64 into the class vocabulary

    def on_grid(self, transform: ResizeTransform, grid_hw: tuple[int, int]) -> np.ndarray:
        """(M, rows, cols) float coverage of the model's mask grid over the input."""
        return np.stack([transform.mask_to_grid(m, grid_hw) for m in self.masks])


def generic_targets(scene: Scene, vocabulary: Sequence[str]) -> GenericTargets:
    index = {name: i for i, name in enumerate(vocabulary)}
    masks = [s.mask for s in scene.segments]
    labels = [index[s.category] for s in scene.segments]
    return GenericTargets(np.stack(masks).astype(bool), np.asarray(labels, dtype=np.int64))
