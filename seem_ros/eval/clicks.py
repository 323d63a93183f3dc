"""Simulated user clicks for interactive-segmentation evaluation.

The protocol is the one SEEM, RITM and SimpleClick report NoC with: each new click goes to the
middle of the largest error region of the current prediction, positive on a missed part of the
object (false negative), negative on a spurious part (false positive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from seem_ros.eval.metrics import as_mask, as_mask_pair, mask_iou


@dataclass(frozen=True)
class Click:
    """A user click at pixel column ``x`` and row ``y``; ``positive`` adds, negative removes."""

    x: float
    y: float
    positive: bool


Predictor = Callable[[list[Click], np.ndarray | None], np.ndarray]
"""``predict(clicks, previous_mask) -> mask``: all clicks so far and the last predicted mask
(``None`` before the first round), returning the new HxW mask."""


def _distance_to_outside(region: np.ndarray, pad: bool) -> np.ndarray:
    """Euclidean distance from each pixel of ``region`` to the nearest pixel outside it.

    OpenCV treats pixels beyond the image as infinitely far, so without padding a region that
    touches the border is deepest right at the border; padding makes the border an edge.
    """
    image = region.astype(np.uint8)
    if pad:
        image = np.pad(image, 1, constant_values=0)
    distance = cv2.distanceTransform(image, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance[1:-1, 1:-1] if pad else distance


def next_click(pred_mask: np.ndarray, gt_mask: np.ndarray, *, pad: bool = True) -> Click | None:
    """The click a simulated user makes to correct ``pred_mask`` towards ``gt_mask``.

    The false-negative map (``gt & ~pred``) and the false-positive map (``pred & ~gt``) are each
    distance-transformed; the map whose deepest pixel lies farther from its edge wins (the
    false-positive map on a tie, as in RITM), and the click goes on that deepest pixel (the
    first in row-major order among equals). It is positive for a false negative, negative for a
    false positive. An empty prediction thus gets a first click at the object's most interior
    point. Returns ``None`` when the prediction is already exact.
    """
    pred, gt = as_mask_pair(pred_mask, gt_mask)
    false_negative_depth = _distance_to_outside(gt & ~pred, pad)
    false_positive_depth = _distance_to_outside(pred & ~gt, pad)
    positive = false_negative_depth.max() > false_positive_depth.max()
    depth = false_negative_depth if positive else false_positive_depth
    if depth.max() <= 0:
        return None
    row, column = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return Click(x=float(column), y=float(row), positive=bool(positive))


def simulate_clicks(
    predict: Predictor,
    gt_mask: np.ndarray,
    *,
    max_clicks: int = 20,
    stop_iou: float | None = None,
) -> list[float]:
    """Run click rounds against ``predict`` and return the IoU after each click.

    Each round adds :func:`next_click` for the previous prediction (an empty mask before the
    first) and calls ``predict(clicks, previous_mask)``. Rounds stop after ``max_clicks``, once
    the IoU reaches ``stop_iou`` or once the prediction is exact; the list is then padded with
    the last IoU, so it always has ``max_clicks`` entries and NoC computed from it is unchanged.
    """
    gt = as_mask(gt_mask, "gt_mask")
    if not gt.any():
        raise ValueError("gt_mask is empty: there is no object to click on")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")

    clicks: list[Click] = []
    previous: np.ndarray | None = None
    ious: list[float] = []
    while len(ious) < max_clicks:
        click = next_click(np.zeros_like(gt) if previous is None else previous, gt)
        if click is None:
            break
        clicks.append(click)
        prediction = as_mask(predict(list(clicks), previous), "predicted mask")
        if prediction.shape != gt.shape:
            raise ValueError(
                f"predict returned shape {prediction.shape}, expected gt shape {gt.shape}"
            )
        ious.append(mask_iou(prediction, gt))
        previous = prediction
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
    return ious + [ious[-1]] * (max_clicks - len(ious))
