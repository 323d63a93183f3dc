"""The words of the procedural world: categories, colours, sizes and held-out pairs.

Everything a user can type as a text prompt about the world comes from here, so the
model's vocabulary, the renderer and the referring phrases cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seem_ros.data.scene import Segment

THING_CATEGORIES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "ring",
    "cross",
    "hexagon",
    "diamond",
)
"""Countable objects, the robot-world stand-ins (mug, box, cone, ...)."""

STUFF_CATEGORIES: tuple[str, ...] = ("wall", "floor", "table", "carpet")
"""Amorphous background regions; at most one segment of each per scene."""

COLOURS: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (220, 40, 40),
        "green": (40, 170, 60),
        "blue": (40, 80, 225),
        "yellow": (240, 220, 40),
        "orange": (245, 140, 30),
        "purple": (145, 60, 195),
        "white": (240, 240, 240),
        "black": (25, 25, 25),
        "cyan": (40, 205, 215),
        "pink": (245, 125, 185),
    }
)
"""Named object colours, RGB."""

SIZES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"small": (0.022, 0.035), "large": (0.065, 0.10)}
)
"""Size name -> (min, max) area of the whole (amodal) shape as a fraction of the image."""

HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("purple", "star"),
        ("red", "hexagon"),
        ("green", "triangle"),
        ("yellow", "ring"),
        ("blue", "diamond"),
        ("orange", "cross"),
    }
)
"""(colour, category) pairs that never occur in the train split (open-vocabulary tests)."""

ALL_PAIRS: tuple[tuple[str, str], ...] = tuple(product(COLOURS, THING_CATEGORIES))
"""Every (colour, category) combination."""


def class_names() -> list[str]:
    """All category names, things first: what a user types as a class-name text prompt."""
    return [*THING_CATEGORIES, *STUFF_CATEGORIES]


def describe(segment: Segment, *, with_size: bool = False) -> str:
    """A short noun phrase for a segment: "red star", "small red star", "floor"."""
    if not segment.is_thing:
        return segment.category
    words = [segment.size] if with_size else []
    words += [segment.colour, segment.category]
    return " ".join(word for word in words if word)
