"""A training-only task for the pixel features: where is the centre of my object?

Two identical objects that touch look the same on both sides of their shared edge, so a click
on one gives a mask holding both: the mask is ``mask_embed . pixel_features`` and the twins'
pixel features are alike (on test at 640x480, 3 of 16 followed objects start that way). A
head trained alone on frozen features could not fix that: the features do not carry which
object a pixel belongs to. This task makes them carry it while the network trains: a 1x1
convolution reads each pixel's mask features and regresses the vector from the pixel to the
centre of its thing, as Panoptic-DeepLab's offset branch does, with an L1 loss over thing
pixels (stuff has no centre worth knowing). Across the shared edge of two twins the targets
point in opposite directions, so the features there must differ, and the click token (sampled
from the features at the click) and the prompt-to-pixel attention can tell the twins apart.

The head is thrown away: it is not part of :class:`~seem_ros.model.seem.SEEM`, so the saved
model, its exports and its weights' layout do not change.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MIN_COVERAGE = 0.5
"""A grid cell belongs to a thing when the thing covers at least this share of it."""


class CentreOffsetHead(nn.Module):
    """(B, D, h, w) mask features -> (B, 2, h, w) predicted (dx, dy) to the object's centre,
    in short sides of the mask grid. Linear, so the features themselves must hold the
    answer rather than a deeper head computing it. It starts at zero: a random head would
    push the trained features towards its own random directions until it had learned
    where the answer lies (with a random start the task's loss began 7x larger than with
    zero offsets); from zero, its pull on the features grows as it learns."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(dim, 2, kernel_size=1)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, mask_features: torch.Tensor) -> torch.Tensor:
        return self.project(mask_features)


def centre_offset_targets(
    coverage: np.ndarray, is_thing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One image's targets on the mask grid.

    Args:
        coverage: (M, h, w) each segment's share of every grid cell.
        is_thing: (M,) which segments are things.
    Returns:
        offsets (2, h, w) float32, (dx, dy) from each cell centre to its thing's centre in
        short sides of the grid (0 where no thing); weight (h, w) float32, 1 on thing cells.
    """
    height, width = coverage.shape[-2:]
    short = float(min(height, width))
    offsets = np.zeros((2, height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    for share, thing in zip(coverage, is_thing):
        if not thing:
            continue
        cells = share >= MIN_COVERAGE
        if not cells.any():
            continue
        centre_x, centre_y = cols[cells].mean(), rows[cells].mean()
        offsets[0][cells] = (centre_x - cols[cells]) / short
        offsets[1][cells] = (centre_y - rows[cells]) / short
        weight[cells] = 1.0
    return offsets, weight


def centre_offset_loss(
    predicted: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Mean L1 error (in short sides of the grid) over thing cells: (B, 2, h, w) predicted
    and target offsets, (B, h, w) weight."""
    error = (predicted - offsets).abs().sum(dim=1)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)
