"""Outlines of the thing categories and their rasterisation into masks.

Shapes are described by a centre, a circumradius (the distance from the centre to the
farthest point) and a rotation. Polygons are filled with OpenCV at 1/16 pixel precision
so slow motion in clips moves edges smoothly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from seem_ros.data.vocabulary import THING_CATEGORIES

STAR_INNER_RATIO = 0.45
RING_INNER_RATIO = 0.55
CROSS_HALF_WIDTH = 0.3
DIAMOND_ASPECT = 0.6
_CIRCLE_VERTICES = 64
_SUBPIXEL_BITS = 4


@dataclass(frozen=True)
class Pose:
    """Where a shape is: centre (x, y) in pixels, circumradius in pixels, rotation in radians."""

    x: float
    y: float
    radius: float
    angle: float = 0.0

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise ValueError(f"pose radius must be positive, got {self.radius}")


@dataclass(frozen=True)
class Outline:
    """Filled polygons minus hole polygons, each an (N, 2) float array of (x, y)."""

    filled: tuple[np.ndarray, ...]
    holes: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class Raster:
    """A rasterised shape: the full-image mask and the clipped bounds of its polygons."""

    mask: np.ndarray
    bbox: tuple[int, int, int, int]

    @property
    def is_empty(self) -> bool:
        x0, y0, x1, y1 = self.bbox
        return x1 <= x0 or y1 <= y0


def _regular_polygon(vertices: int, phase: float = 0.0) -> np.ndarray:
    angles = phase + np.arange(vertices) * (2.0 * np.pi / vertices)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star() -> np.ndarray:
    tips = _regular_polygon(10, -np.pi / 2)
    radii = np.where(np.arange(10) % 2 == 0, 1.0, STAR_INNER_RATIO)
    return tips * radii[:, None]


def _cross() -> np.ndarray:
    # Half-length chosen so the arm tips touch the unit circle.
    w = CROSS_HALF_WIDTH
    r = float(np.sqrt(1.0 - w * w))
    return np.array(
        [
            (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r),
            (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w), (-w, -r),
        ]
    )  # fmt: skip


@cache
def unit_outline(category: str) -> Outline:
    """The category's outline at unit circumradius, centred on the origin, unrotated."""
    if category == "circle":
        return Outline((_regular_polygon(_CIRCLE_VERTICES),))
    if category == "ring":
        circle = _regular_polygon(_CIRCLE_VERTICES)
        return Outline((circle,), (circle * RING_INNER_RATIO,))
    polygons = {
        "square": lambda: _regular_polygon(4, np.pi / 4),
        "triangle": lambda: _regular_polygon(3, -np.pi / 2),
        "star": _star,
        "cross": _cross,
        "hexagon": lambda: _regular_polygon(6),
        "diamond": lambda: np.array([(0, -1), (DIAMOND_ASPECT, 0), (0, 1), (-DIAMOND_ASPECT, 0)]),
    }
    if category not in polygons:
        raise ValueError(f"unknown thing category {category!r}; expected one of {THING_CATEGORIES}")
    return Outline((polygons[category]().astype(np.float64),))


def _polygon_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@cache
def area_factor(category: str) -> float:
    """Area of the shape divided by its circumradius squared."""
    outline = unit_outline(category)
    return sum(map(_polygon_area, outline.filled)) - sum(map(_polygon_area, outline.holes))


def radius_for_area(category: str, area: float) -> float:
    """The circumradius at which the shape covers `area` square pixels."""
    if area <= 0:
        raise ValueError(f"area must be positive, got {area}")
    return float(np.sqrt(area / area_factor(category)))


@cache
def inradius_factor(category: str) -> float:
    """Radius of the largest centred disc inside the filled shape, per unit circumradius.

    A disc of this radius stays covered at any rotation, which is what a clip needs to
    hide one object completely behind another.
    """
    outline = unit_outline(category)
    if outline.holes:
        return 0.0
    polygon = outline.filled[0]
    starts, ends = polygon, np.roll(polygon, -1, axis=0)
    edges = ends - starts
    t = np.clip(-np.einsum("ij,ij->i", starts, edges) / np.einsum("ij,ij->i", edges, edges), 0, 1)
    nearest = starts + t[:, None] * edges
    return float(np.min(np.linalg.norm(nearest, axis=1)))


def outline_at(category: str, pose: Pose) -> Outline:
    """The category's outline scaled, rotated and moved to `pose`."""
    cos, sin = np.cos(pose.angle), np.sin(pose.angle)
    transform = pose.radius * np.array([[cos, sin], [-sin, cos]])
    offset = np.array([pose.x, pose.y])
    unit = unit_outline(category)
    return Outline(
        tuple(p @ transform + offset for p in unit.filled),
        tuple(p @ transform + offset for p in unit.holes),
    )


def rasterise(category: str, pose: Pose, image_hw: tuple[int, int]) -> Raster:
    """Fill the shape into an (H, W) bool mask; pixel (row i, column j) sits at (x=j, y=i)."""
    height, width = image_hw
    outline = outline_at(category, pose)
    canvas = np.zeros((height, width), dtype=np.uint8)
    scale = 1 << _SUBPIXEL_BITS

    def fixed_point(polygons: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        return [np.round(p * scale).astype(np.int32) for p in polygons]

    cv2.fillPoly(canvas, fixed_point(outline.filled), 1, cv2.LINE_8, _SUBPIXEL_BITS)
    if outline.holes:
        cv2.fillPoly(canvas, fixed_point(outline.holes), 0, cv2.LINE_8, _SUBPIXEL_BITS)
    points = np.concatenate(outline.filled)
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
    bbox = (max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height))
    return Raster(canvas.view(np.bool_), bbox)
