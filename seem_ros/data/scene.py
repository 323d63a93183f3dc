"""Ground truth of one rendered image: panoptic segments and referring phrases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from seem_ros.data.vocabulary import class_names

BBox = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class Segment:
    """One panoptic segment.

    id: value of this segment in `Scene.segment_ids` (> 0; a track identity in clips).
    category: a thing or stuff category name.
    mask: (H, W) bool, the visible pixels.
    bbox: (x0, y0, x1, y1) of the visible mask, inclusive-exclusive.
    area: number of visible pixels.
    colour, size: the thing's colour and size names; None for stuff.
    amodal_mask: (H, W) bool, the whole shape including hidden parts; None for stuff.
    """

    id: int
    category: str
    is_thing: bool
    mask: np.ndarray
    bbox: BBox
    area: int
    colour: str | None = None
    size: str | None = None
    amodal_mask: np.ndarray | None = None

    @cached_property
    def centroid(self) -> tuple[float, float]:
        """Mean (x, y) of the visible pixels: where phrases like "left of" measure from."""
        rows, cols = np.nonzero(self.mask)
        return float(cols.mean()), float(rows.mean())


@dataclass(frozen=True)
class ReferringExpression:
    """A phrase that picks out exactly one segment of its scene."""

    text: str
    target_id: int


@dataclass(frozen=True, eq=False)
class Scene:
    """A rendered image with its ground truth.

    image: (H, W, 3) uint8 RGB.
    segment_ids: (H, W) int32; every pixel holds the id of the one segment it belongs to.
    segments: stuff first, then things back to front.
    phrases: referring expressions, each naming a unique segment.
    seed, split: what the scene was rendered from.
    """

    image: np.ndarray
    segment_ids: np.ndarray
    segments: list[Segment]
    phrases: list[ReferringExpression]
    seed: int
    split: str

    @property
    def hw(self) -> tuple[int, int]:
        return self.segment_ids.shape[0], self.segment_ids.shape[1]

    @property
    def thing_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.is_thing]

    @property
    def stuff_segments(self) -> list[Segment]:
        return [s for s in self.segments if not s.is_thing]

    def segment(self, segment_id: int) -> Segment:
        for candidate in self.segments:
            if candidate.id == segment_id:
                return candidate
        raise KeyError(f"no segment with id {segment_id} in this scene")

    def instance_mask(self, segment_id: int) -> np.ndarray:
        """(H, W) bool visible mask of one segment."""
        return self.segment(segment_id).mask

    def semantic_map(self, vocab: Sequence[str] | None = None) -> np.ndarray:
        """(H, W) int64 index of each pixel's category in `vocab` (default: `class_names()`)."""
        names = list(class_names() if vocab is None else vocab)
        index = {name: i for i, name in enumerate(names)}
        missing = sorted({s.category for s in self.segments} - index.keys())
        if missing:
            raise ValueError(
                f"categories {missing} of this scene are not in the vocabulary {names}"
            )
        lookup = np.zeros(int(self.segment_ids.max()) + 1, dtype=np.int64)
        for segment in self.segments:
            lookup[segment.id] = index[segment.category]
        return lookup[self.segment_ids]


FIRST_THING_ID = 16
"""Things get ids FIRST_THING_ID, FIRST_THING_ID + 1, ...; stuff ids are below it."""


def stuff_segment_id(category_index: int) -> int:
    """The fixed segment id of a stuff category (its index in STUFF_CATEGORIES plus one)."""
    return category_index + 1
