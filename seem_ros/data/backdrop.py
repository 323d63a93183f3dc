"""Background "stuff": wall, floor, and sometimes a carpet and a table, each textured.

The backdrop is rendered once per scene or clip at world resolution; a camera then
samples views of it (see `painter.Camera`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from seem_ros.data.textures import checker, plane_coordinates, smooth_noise, stripes
from seem_ros.data.vocabulary import STUFF_CATEGORIES

WALL, FLOOR, TABLE, CARPET = (
    STUFF_CATEGORIES.index(name) for name in ("wall", "floor", "table", "carpet")
)
CARPET_PROBABILITY = 0.55
TABLE_PROBABILITY = 0.5

_PALETTES: dict[int, tuple[tuple[int, int, int], ...]] = {
    WALL: ((172, 166, 152), (150, 160, 172), (186, 176, 160), (140, 152, 140)),
    FLOOR: ((126, 96, 66), (150, 122, 88), (106, 101, 96), (136, 131, 121)),
    TABLE: ((96, 70, 50), (112, 106, 100), (80, 60, 45)),
    CARPET: ((122, 62, 72), (62, 92, 112), (92, 112, 72), (132, 112, 82)),
}


@dataclass(frozen=True, eq=False)
class Backdrop:
    """labels: (H, W) uint8 index into STUFF_CATEGORIES; image: (H, W, 3) float32 RGB."""

    labels: np.ndarray
    image: np.ndarray

    @property
    def hw(self) -> tuple[int, int]:
        return self.labels.shape[0], self.labels.shape[1]


def sample_backdrop(rng: np.random.Generator, image_hw: tuple[int, int]) -> Backdrop:
    """A random room corner: wall above a tilted horizon, floor below, optional carpet and table."""
    height, width = image_hw
    if height < 8 or width < 8:
        raise ValueError(f"backdrop needs at least 8x8 pixels, got {image_hw}")
    labels = _stuff_layout(rng, image_hw)
    base_colours = np.zeros((len(STUFF_CATEGORIES), 3), dtype=np.float32)
    pattern = np.zeros((height, width), dtype=np.float32)
    for index in np.flatnonzero(np.bincount(labels.ravel(), minlength=len(STUFF_CATEGORIES))):
        base_colours[index] = _base_colour(rng, int(index))
        np.copyto(pattern, _stuff_pattern(rng, int(index), image_hw), where=labels == index)
    image = base_colours[labels]
    image += pattern[..., None]
    return Backdrop(labels=labels, image=image)


def _stuff_layout(rng: np.random.Generator, image_hw: tuple[int, int]) -> np.ndarray:
    height, width = image_hw
    horizon = rng.uniform(0.2, 0.42) * height
    slope = np.tan(np.radians(rng.uniform(-6, 6)))
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    labels = np.where(rows < horizon + slope * (cols - width / 2), WALL, FLOOR).astype(np.uint8)
    floor_top = horizon + 0.1 * height
    if rng.random() < CARPET_PROBABILITY:
        carpet = np.zeros_like(labels)
        centre = (rng.uniform(0.25, 0.75) * width, rng.uniform(floor_top, 0.85 * height))
        axes = (rng.uniform(0.18, 0.32) * width, rng.uniform(0.08, 0.16) * height)
        cv2.ellipse(carpet, _ints(centre), _ints(axes), rng.uniform(-25, 25), 0, 360, 1, -1)
        labels[(carpet == 1) & (labels == FLOOR)] = CARPET
    if rng.random() < TABLE_PROBABILITY:
        centre = (
            rng.uniform(0.25, 0.75) * width,
            rng.uniform(max(floor_top, 0.55 * height), 0.85 * height),
        )
        extent = (rng.uniform(0.35, 0.6) * width, rng.uniform(0.15, 0.28) * height)
        corners = cv2.boxPoints((centre, extent, rng.uniform(-12, 12)))
        cv2.fillPoly(labels, [np.round(corners).astype(np.int32)], TABLE)
    return labels


def _ints(pair: tuple[float, float]) -> tuple[int, int]:
    return round(pair[0]), round(pair[1])


def _base_colour(rng: np.random.Generator, index: int) -> np.ndarray:
    palette = _PALETTES[index]
    base = np.asarray(palette[int(rng.integers(len(palette)))], dtype=np.float32)
    return base + rng.uniform(-10, 10, size=3).astype(np.float32)


def _stuff_pattern(rng: np.random.Generator, index: int, image_hw: tuple[int, int]) -> np.ndarray:
    """Full-size intensity offsets for one stuff category (the caller keeps its region)."""
    span = min(image_hw)
    if index == WALL:
        pattern = 8 * smooth_noise(rng, image_hw, span / 4)
        if rng.random() < 0.5:
            pattern += 7 * stripes(plane_coordinates(image_hw, 0.0), rng.uniform(0.07, 0.15) * span)
        return pattern
    if index == FLOOR:
        planks = plane_coordinates(image_hw, np.pi / 2 + rng.uniform(-0.3, 0.3))
        pattern = 14 * stripes(planks, rng.uniform(0.06, 0.12) * span)
        return pattern + 8 * smooth_noise(rng, image_hw, span / 10)
    if index == TABLE:
        grain = plane_coordinates(image_hw, rng.uniform(0, np.pi))
        pattern = 8 * stripes(grain, rng.uniform(0.02, 0.035) * span)
        return pattern + 6 * smooth_noise(rng, image_hw, span / 12)
    if rng.random() < 0.5:
        period = rng.uniform(0.04, 0.08) * span
        angle = rng.uniform(0, np.pi / 2)
        u = plane_coordinates(image_hw, angle)
        v = plane_coordinates(image_hw, angle + np.pi / 2)
        return 22 * checker(u, v, period)
    return 28 * smooth_noise(rng, image_hw, span / 20)
