"""A bounded-size crop of a frame around an object: what re-finds it after an occlusion."""

from __future__ import annotations

import cv2
import numpy as np

from ..prompts import ReferenceRegion
from ..results import mask_box

MIN_REFERENCE_SIDE = 8  # ReferenceRegion refuses smaller images


def reference_crop(
    image: np.ndarray, mask: np.ndarray, *, margin: float = 0.25, max_side: int = 128
) -> ReferenceRegion | None:
    """The object's box grown by ``margin`` (share of its size, each side), cropped out of
    ``image`` and shrunk so its longest side is at most ``max_side`` pixels.

    The crop is a copy, so a track never keeps a whole frame alive. Returns None when the
    mask is empty, the image is smaller than a reference allows, or the object vanishes when
    shrunk.
    """
    if max_side < MIN_REFERENCE_SIDE:
        raise ValueError(f"max_side must be at least {MIN_REFERENCE_SIDE}, got {max_side}")
    height, width = mask.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    if not mask.any() or height < MIN_REFERENCE_SIDE or width < MIN_REFERENCE_SIDE:
        return None
    x0, y0, x1, y1 = mask_box(mask)
    grow_x = max(round((x1 - x0) * margin), (MIN_REFERENCE_SIDE - (x1 - x0) + 1) // 2, 0)
    grow_y = max(round((y1 - y0) * margin), (MIN_REFERENCE_SIDE - (y1 - y0) + 1) // 2, 0)
    x0, x1 = _span(x0 - grow_x, x1 + grow_x, width)
    y0, y1 = _span(y0 - grow_y, y1 + grow_y, height)
    crop_image = image[y0:y1, x0:x1, :3]
    crop_mask = mask[y0:y1, x0:x1]
    scale = max_side / max(crop_mask.shape)
    if scale < 1.0:
        size = (
            max(MIN_REFERENCE_SIDE, round(crop_mask.shape[1] * scale)),
            max(MIN_REFERENCE_SIDE, round(crop_mask.shape[0] * scale)),
        )
        crop_image = cv2.resize(crop_image, size, interpolation=cv2.INTER_AREA)
        crop_mask = (
            cv2.resize(crop_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        )
        if not crop_mask.any():
            return None
    return ReferenceRegion(np.ascontiguousarray(crop_image).copy(), crop_mask.copy())


def _span(start: int, end: int, limit: int) -> tuple[int, int]:
    """Clip [start, end) into [0, limit), keeping at least MIN_REFERENCE_SIDE pixels."""
    start, end = max(start, 0), min(end, limit)
    missing = MIN_REFERENCE_SIDE - (end - start)
    if missing > 0:
        start = max(0, start - missing)
        end = min(limit, start + MIN_REFERENCE_SIDE)
    return start, end
