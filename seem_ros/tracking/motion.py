"""Where a tracked object was in its last confident frames, and where it should be now.

A prompted object's memory tokens tell the decoder what it looks like; they cannot tell two
identical objects apart, and neither can the mask features of a small model, so a decode often
returns the object *and* its look-alike. :class:`MotionMemory` keeps the centroids and areas of
the object's last few confident masks (a short memory of several past frames), predicts where it
is now with a constant-velocity model, and keeps only the connected part of a new mask that
lies where the object can be. A hidden object keeps being predicted, with a search radius that
grows each unseen frame, so it is re-found where it reappears and not where its twin is.

Velocity is estimated only from *clean* frames, whose area is close to the object's usual area,
so frames where it was merged with a neighbour (a crossing) do not drag the prediction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

HISTORY = 8
"""Confident frames remembered per object."""
CLEAN_AREA = (0.6, 1.6)
"""A frame is clean when its area is within these factors of the remembered median area."""
SIZE_RANGE = (0.3, 2.5)
"""A part outside these factors of the object's usual area is not the object."""


@dataclass(frozen=True)
class Sighting:
    frame: int
    x: float
    y: float
    area: int


@dataclass
class MotionMemory:
    """Recent sightings of one object and a constant-velocity prior over its position.

    Args:
        reach: search radius, in object sizes (square root of its area), while it is seen.
        growth: extra radius per unseen frame, in object sizes.
    """

    reach: float = 1.0
    growth: float = 0.35
    sightings: deque[Sighting] = field(default_factory=lambda: deque(maxlen=HISTORY))
    template: np.ndarray | None = None  # the last clean mask
    template_at: Sighting | None = None

    @property
    def typical_area(self) -> float:
        return float(np.median([s.area for s in self.sightings])) if self.sightings else 0.0

    def record(self, frame: int, mask: np.ndarray) -> None:
        """Remember a confident mask of this frame."""
        rows, cols = np.nonzero(mask)
        if not len(rows):
            return
        sighting = Sighting(frame, float(cols.mean()), float(rows.mean()), len(rows))
        self.sightings.append(sighting)
        if sighting in self._clean():
            self.template, self.template_at = mask.copy(), sighting

    def _clean(self) -> list[Sighting]:
        typical = self.typical_area
        low, high = CLEAN_AREA
        return [s for s in self.sightings if low * typical <= s.area <= high * typical]

    def velocity(self) -> tuple[float, float]:
        """Pixels per frame: a least-squares line through the last clean sightings (up to 5; 0
        with fewer than two)."""
        clean = self._clean()[-5:]
        if len(clean) < 2:
            return 0.0, 0.0
        t = np.array([s.frame for s in clean], dtype=np.float64)
        if np.ptp(t) == 0:
            return 0.0, 0.0
        t -= t.mean()
        denominator = float(t @ t)
        vx = float(t @ np.array([s.x for s in clean])) / denominator
        vy = float(t @ np.array([s.y for s in clean])) / denominator
        return vx, vy

    def predict(self, frame: int) -> tuple[float, float, float] | None:
        """(x, y, radius) where the object should be in ``frame``; None without sightings."""
        if not self.sightings:
            return None
        clean = self._clean() or list(self.sightings)
        anchor = clean[-1]
        vx, vy = self.velocity()
        dt = max(frame - anchor.frame, 1)
        size = np.sqrt(max(self.typical_area, 1.0))
        radius = size * (self.reach + self.growth * (dt - 1)) + 0.5 * np.hypot(vx, vy) * dt
        return anchor.x + vx * dt, anchor.y + vy * dt, float(radius)

    def select(self, mask: np.ndarray, frame: int) -> np.ndarray:
        """The connected part of ``mask`` nearest to where the object should be; an empty mask
        when no part comes within the search radius or its size is far from the object's
        (the mask unchanged without sightings). A part much larger than the object (merged
        with a touching look-alike) is cut to the object's last clean mask, moved to where the
        object should be."""
        prior = self.predict(frame)
        if prior is None or not mask.any():
            return mask
        x, y, radius = prior
        count, labels, _, centroids = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8
        )
        parts = sorted(
            (float(np.hypot(centroids[k, 0] - x, centroids[k, 1] - y)), k) for k in range(1, count)
        )
        typical = self.typical_area
        parts = [
            (d, k)
            for d, k in parts
            if len(self.sightings) < 2 or np.count_nonzero(labels == k) <= SIZE_RANGE[1] * typical
        ]
        if not parts:
            return np.zeros_like(mask)
        nearest_distance, nearest = parts[0]
        if nearest_distance > radius and not _touches(labels == nearest, x, y, radius):
            return np.zeros_like(mask)
        # more parts of the same object (split by an occluder) join while the area stays usual
        keep = [nearest]
        area = int(np.count_nonzero(labels == nearest))
        limit = CLEAN_AREA[1] * typical
        for distance, label in parts[1:]:
            extra = int(np.count_nonzero(labels == label))
            if distance <= radius and area + extra <= limit:
                keep.append(label)
                area += extra
        selected = np.isin(labels, keep)
        if len(self.sightings) >= 2 and area < SIZE_RANGE[0] * typical:
            return np.zeros_like(mask)
        if area > CLEAN_AREA[1] * typical and self.template is not None:
            selected &= self._moved_template(x, y)
        return selected

    def _moved_template(self, x: float, y: float) -> np.ndarray:
        """The last clean mask shifted to (x, y) and grown by a margin."""
        assert self.template is not None and self.template_at is not None
        shift = np.float32([[1, 0, x - self.template_at.x], [0, 1, y - self.template_at.y]])
        height, width = self.template.shape
        moved = cv2.warpAffine(self.template.astype(np.uint8), shift, (width, height))
        margin = max(2, round(0.15 * np.sqrt(self.typical_area)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        return cv2.dilate(moved, kernel) > 0


def part_at(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` under the given (N, 2) pixel points (x, y); the part
    nearest to the first point when none lies under one. What a first click selects."""
    if not mask.any() or len(points) == 0:
        return mask
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    height, width = mask.shape
    xy = np.clip(np.floor(np.asarray(points, dtype=np.float64)), 0, [width - 1, height - 1])
    hit = {int(labels[int(y), int(x)]) for x, y in xy} - {0}
    if not hit:
        rows, cols = np.nonzero(labels)
        nearest = int(np.argmin(np.hypot(cols - xy[0, 0], rows - xy[0, 1])))
        hit = {int(labels[rows[nearest], cols[nearest]])}
    return np.isin(labels, sorted(hit))


def _touches(component: np.ndarray, x: float, y: float, radius: float) -> bool:
    rows, cols = np.nonzero(component)
    return bool(np.min(np.hypot(cols - x, rows - y)) <= radius)
