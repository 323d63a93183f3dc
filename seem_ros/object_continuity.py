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
    parts = _Parts.of(mask)
    return mask if parts is None else parts.keep(anchor & mask)


def keep_parts_near(mask: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` (H, W) bool within :data:`FOLLOW_MARGIN` of the frame's
    longer side from ``previous`` (a bool mask of any size).

    Returns ``mask`` itself when it has at most one part, ``previous`` is empty, or no part is
    near it. This runs on every followed object in every frame, so the margin is grown on a
    coarse copy of ``previous`` (longer side at most :data:`COARSE_SIDE`), not at full size.
    """
    parts = _Parts.of(mask)
    if parts is None:
        return mask
    height, width = mask.shape
    coarse_hw = _coarse_hw(mask.shape)
    coarse = _nearest(previous, coarse_hw)
    if not coarse.any():
        return mask
    radius = max(1, round(FOLLOW_MARGIN * max(coarse_hw)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(_pixels(coarse), disk).view(bool)
    grown = _nearest(grown, (height, width))
    return parts.keep(grown & mask)


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
    return keep_parts_near(mask, previous)


COARSE_SIDE = 320
"""The longer side of the coarse copies that decide cheaply whether a mask has several parts
and where a followed object's margin reaches."""


class _Parts:
    """The 8-connected parts of a mask with two or more of them."""

    def __init__(self, mask: np.ndarray, count: int, labels: np.ndarray) -> None:
        self.mask, self.count, self.labels = mask, count, labels

    @classmethod
    def of(cls, mask: np.ndarray) -> _Parts | None:
        """None for a mask of fewer than two parts. A coarse copy is labelled first: most masks
        are one part, and then the full-size labelling is skipped (parts a coarse copy merges
        are left alone, which never removes pixels it should not)."""
        if not mask.any():
            return None
        coarse = _nearest(mask, _coarse_hw(mask.shape))
        if cv2.connectedComponents(_pixels(coarse), connectivity=8)[0] <= 2:
            return None
        count, labels = cv2.connectedComponents(_pixels(mask), connectivity=8)
        if count <= 2:  # background and one part
            return None
        return cls(mask, count, labels)

    def keep(self, anchor_pixels: np.ndarray) -> np.ndarray:
        """The mask without the parts that hold none of ``anchor_pixels``; the mask itself when
        no part holds one."""
        held = np.bincount(self.labels[anchor_pixels], minlength=self.count) > 0
        if not held[1:].any():
            return self.mask
        kept = self.mask.copy()
        for label in np.flatnonzero(~held[1:]) + 1:
            kept &= self.labels != label  # a comparison per part: far cheaper than a gather
        return kept


def _coarse_hw(hw: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, COARSE_SIDE / max(hw))
    return max(1, round(hw[0] * scale)), max(1, round(hw[1] * scale))


def _nearest(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``mask`` (bool) resized to ``hw`` by nearest neighbour (itself when already that size)."""
    if mask.shape == hw:
        return mask
    resized = cv2.resize(_pixels(mask), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
    return resized.view(bool)


def _pixels(mask: np.ndarray) -> np.ndarray:
    """A bool mask as the contiguous 0/1 uint8 image OpenCV takes (no copy when it can be)."""
    return np.ascontiguousarray(mask).view(np.uint8)
