"""One object is one place: mask parts far from where the prompt puts the object are dropped.

The network finds a clicked or followed object mostly by its look, so an exact twin elsewhere
in the frame (two identical mugs) can light up in the same mask. Where the prompt itself says
where the object is, parts of the mask that are not there are the twin, not the object:

* a positive click is on the object: of the mask's connected parts, those holding a positive
  click are kept;
* a followed object (a memory prompt with a mask, no click) moves a little between frames: the
  parts touching its previous mask, grown by ``FOLLOW_MARGIN`` of the frame's longer side, are
  kept.

A rule that finds no part to anchor on (the click fell in a hole of the mask; the object moved
farther than the margin, or reappears after being hidden) leaves the mask as it is, so it only
ever removes parts when one part is certainly the object. Parts are 8-connected at the image's
resolution.

Measured on the validation split with the shipped demo model, against the same weights without
the rule (``docs/model_selection_val_robust.json``, ``continuity``): video J&F 0.809 -> 0.826,
hard video 0.541 -> 0.560, NoC@85 1.55 -> 1.47; NoC@90 2.45 -> 2.50, the cost of a split object
(one part per click) being kept a part at a time.
"""

from __future__ import annotations

import cv2
import numpy as np

from .prompts import ObjectPrompt, Points

FOLLOW_MARGIN = 0.02
"""How far (a fraction of the frame's longer side) a followed object's previous mask is grown
to find its parts in the next frame: about 13 px at 640x480, a fast move between two frames."""


def keep_parts_at(mask: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` (H, W) bool that overlap ``anchor`` (H, W) bool.

    Returns ``mask`` itself when it has at most one part or no part overlaps the anchor.
    """
    if mask.shape != anchor.shape:
        raise ValueError(f"mask {mask.shape} and anchor {anchor.shape} differ in shape")
    if not mask.any():
        return mask
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background and one part
        return mask
    anchored = np.unique(labels[anchor & mask])
    if anchored.size == 0:
        return mask
    return np.isin(labels, anchored)


def click_anchor(points: Points | None, hw: tuple[int, int]) -> np.ndarray | None:
    """The pixels under the positive clicks of ``points`` (None when there is none)."""
    if points is None:
        return None
    positive = points.coords[points.labels == 1]
    if len(positive) == 0:
        return None
    height, width = hw
    anchor = np.zeros(hw, dtype=bool)
    cols = np.clip(np.floor(positive[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.floor(positive[:, 1]).astype(int), 0, height - 1)
    anchor[rows, cols] = True
    return anchor


def follow_anchor(previous: np.ndarray, hw: tuple[int, int]) -> np.ndarray | None:
    """``previous`` (a mask of any size, resized to ``hw``) grown by :data:`FOLLOW_MARGIN`;
    None when it is empty."""
    if not previous.any():
        return None
    height, width = hw
    grid = previous.astype(np.uint8)
    if previous.shape != hw:
        grid = cv2.resize(grid, (width, height), interpolation=cv2.INTER_NEAREST)
    radius = max(1, round(FOLLOW_MARGIN * max(hw)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(grid, disk).astype(bool)
    return grown if grown.any() else None


def keep_in_place(mask: np.ndarray, prompt: ObjectPrompt) -> np.ndarray:
    """``mask`` (H, W) bool, the answer to ``prompt``, without its parts away from the object's
    positive clicks (and the previous round's mask), or, for an object followed without clicks,
    away from its previous mask. Box, mask and scribble prompts place the object themselves:
    without clicks, their masks are left as they are."""
    previous = prompt.memory.mask if prompt.memory is not None else None
    clicks = click_anchor(prompt.points, mask.shape)
    if clicks is not None:
        if previous is not None and previous.shape == mask.shape:
            clicks |= previous  # parts the user already accepted stay
        return keep_parts_at(mask, clicks)
    if previous is None or prompt.box is not None or prompt.mask is not None or prompt.scribbles:
        return mask
    anchor = follow_anchor(previous, mask.shape)
    return mask if anchor is None else keep_parts_at(mask, anchor)
