"""Choosing which objects a still scene holds and where they go.

Objects are stacked back to front. A new object is accepted only if every object,
itself and the ones it covers, stays recognisable: at least `MIN_VISIBLE_FRACTION` of
the image visible and at most `MAX_OCCLUDED_FRACTION` of its own shape hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seem_ros.data.appearance import ThingAppearance, sample_appearance
from seem_ros.data.shapes import Pose, Raster, radius_for_area, rasterise
from seem_ros.data.vocabulary import COLOURS, SIZES, THING_CATEGORIES

MIN_VISIBLE_FRACTION = 0.015
MAX_OCCLUDED_FRACTION = 0.6
NEAR_NEIGHBOUR_PROBABILITY = 0.5
"""Chance that a new object is dropped next to an existing one, so occlusions are common."""

Pair = tuple[str, str]


@dataclass(frozen=True, eq=False)
class ThingSpec:
    """The identity of one object: what it is and how it looks, not where it is."""

    id: int
    category: str
    colour: str
    size: str
    appearance: ThingAppearance

    def __post_init__(self) -> None:
        if self.category not in THING_CATEGORIES:
            raise ValueError(f"unknown thing category {self.category!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; expected one of {tuple(SIZES)}")


def make_thing(rng: np.random.Generator, thing_id: int, pair: Pair, size: str) -> ThingSpec:
    """A thing of the given (colour, category) and size with a random appearance."""
    colour, category = pair
    return ThingSpec(thing_id, category, colour, size, sample_appearance(rng, colour))


def sample_radius(
    rng: np.random.Generator, category: str, size: str, image_hw: tuple[int, int]
) -> float:
    """A circumradius giving the shape an area inside the size's range for this image."""
    low, high = SIZES[size]
    area = rng.uniform(low, high) * image_hw[0] * image_hw[1]
    return radius_for_area(category, area)


def sample_pair(
    rng: np.random.Generator,
    pairs: Sequence[Pair],
    *,
    category: str | None = None,
    exclude: frozenset[Pair] = frozenset(),
) -> Pair:
    """A uniformly drawn (colour, category) from `pairs`, optionally of one category."""
    options = [p for p in pairs if p not in exclude and (category is None or p[1] == category)]
    if not options:
        raise ValueError(f"no (colour, category) pair left for category={category!r}")
    return options[int(rng.integers(len(options)))]


def sample_size(rng: np.random.Generator) -> str:
    names = tuple(SIZES)
    return names[int(rng.integers(len(names)))]


@dataclass
class _Placed:
    spec: ThingSpec
    pose: Pose
    raster: Raster
    amodal_area: int
    visible: np.ndarray


@dataclass
class StillPlacer:
    """Stacks objects into a still image, rejecting placements that hide something too much."""

    image_hw: tuple[int, int]
    min_visible_fraction: float = MIN_VISIBLE_FRACTION
    max_occluded_fraction: float = MAX_OCCLUDED_FRACTION
    _placed: list[_Placed] = field(default_factory=list)

    @property
    def placed(self) -> list[tuple[ThingSpec, Pose]]:
        """Accepted objects, back to front."""
        return [(p.spec, p.pose) for p in self._placed]

    def raster(self, thing_id: int) -> Raster:
        return next(p.raster for p in self._placed if p.spec.id == thing_id)

    def try_add(self, spec: ThingSpec, pose: Pose) -> bool:
        """Put `spec` on top at `pose` if every object stays recognisable; report success."""
        raster = rasterise(spec.category, pose, self.image_hw)
        area = int(np.count_nonzero(raster.mask))
        if not self._acceptable(area, area):
            return False
        remaining: list[np.ndarray] = []
        for placed in self._placed:
            if not _boxes_overlap(placed.raster.bbox, raster.bbox):
                remaining.append(placed.visible)
                continue
            visible = placed.visible & ~raster.mask
            if not self._acceptable(int(np.count_nonzero(visible)), placed.amodal_area):
                return False
            remaining.append(visible)
        for placed, visible in zip(self._placed, remaining):
            placed.visible = visible
        self._placed.append(_Placed(spec, pose, raster, area, raster.mask.copy()))
        return True

    def place(self, rng: np.random.Generator, spec: ThingSpec, attempts: int = 12) -> bool:
        """Try random poses for `spec` (often next to an existing object); report success."""
        for _ in range(attempts):
            radius = sample_radius(rng, spec.category, spec.size, self.image_hw)
            if self.try_add(spec, self.propose(rng, radius)):
                return True
        return False

    def propose(self, rng: np.random.Generator, radius: float) -> Pose:
        """A random pose that keeps the shape inside the image where the image allows it."""
        height, width = self.image_hw
        angle = float(rng.uniform(0, 2 * np.pi))
        if self._placed and rng.random() < NEAR_NEIGHBOUR_PROBABILITY:
            neighbour = self._placed[int(rng.integers(len(self._placed)))].pose
            distance = (neighbour.radius + radius) * rng.uniform(0.6, 1.1)
            heading = rng.uniform(0, 2 * np.pi)
            x = neighbour.x + distance * np.cos(heading)
            y = neighbour.y + distance * np.sin(heading)
        else:
            x, y = rng.uniform(0, width), rng.uniform(0, height)
        return Pose(
            _clamp(x, radius, width - radius), _clamp(y, radius, height - radius), radius, angle
        )

    def _acceptable(self, visible_area: int, amodal_area: int) -> bool:
        image_area = self.image_hw[0] * self.image_hw[1]
        return (
            amodal_area > 0
            and visible_area >= self.min_visible_fraction * image_area
            and visible_area >= (1.0 - self.max_occluded_fraction) * amodal_area
        )


def _clamp(value: float, low: float, high: float) -> float:
    if low > high:
        return (low + high) / 2
    return float(min(max(value, low), high))


def _boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
