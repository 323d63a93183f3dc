"""Still scenes: `render_scene(seed)` and the shared steps the special cases reuse."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seem_ros.data.backdrop import Backdrop, sample_backdrop
from seem_ros.data.layout import (
    Pair,
    StillPlacer,
    ThingSpec,
    make_thing,
    sample_pair,
    sample_size,
)
from seem_ros.data.painter import Camera, Lighting, Sensor, build_segments, paint
from seem_ros.data.phrases import referring_expressions
from seem_ros.data.scene import FIRST_THING_ID, Scene
from seem_ros.data.shapes import Pose
from seem_ros.data.splits import check_seed, check_split, pairs_for_split

THING_COUNT = (3, 7)
"""Inclusive range of objects a scene asks for (fewer when they do not fit)."""
SAME_CATEGORY_PROBABILITY = 0.4
"""Chance that a new object repeats an existing category, so scenes hold several instances."""
BLUR_PROBABILITY = 0.3

_STREAM_SCENE = 1


def scene_rng(seed: int, stream: int) -> np.random.Generator:
    """The random stream of one kind of item (scene, clip, case) for a seed."""
    return np.random.default_rng([check_seed(seed), stream])


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate an image size given as (height, width)."""
    if len(size) != 2 or any(not isinstance(n, int) or n < 32 for n in size):
        raise ValueError(f"size must be (height, width) ints of at least 32, got {size!r}")
    return int(size[0]), int(size[1])


def render_scene(seed: int, size: tuple[int, int] = (256, 256), split: str = "train") -> Scene:
    """A random still scene of things over stuff; `size` is (height, width).

    Objects of `split` never take a held-out (colour, category) pair when split is train.
    """
    image_hw = check_size(size)
    check_split(split)
    rng = scene_rng(seed, _STREAM_SCENE)
    backdrop = sample_backdrop(rng, image_hw)
    placer = StillPlacer(image_hw)
    add_random_things(
        rng, placer, pairs_for_split(split), int(rng.integers(THING_COUNT[0], THING_COUNT[1] + 1))
    )
    return compose_still(rng, backdrop, placer.placed, seed, split)


def add_random_things(
    rng: np.random.Generator,
    placer: StillPlacer,
    pairs: Sequence[Pair],
    count: int,
    exclude: frozenset[Pair] = frozenset(),
) -> None:
    """Ask for `count` more random objects; those that cannot be placed are dropped."""
    for _ in range(count):
        placed_categories = [spec.category for spec, _ in placer.placed]
        category = None
        if placed_categories and rng.random() < SAME_CATEGORY_PROBABILITY:
            category = placed_categories[int(rng.integers(len(placed_categories)))]
        pair = sample_pair(rng, pairs, category=category, exclude=exclude)
        spec = make_thing(rng, next_thing_id(placer), pair, sample_size(rng))
        placer.place(rng, spec)


def next_thing_id(placer: StillPlacer) -> int:
    return FIRST_THING_ID + len(placer.placed)


def sample_lighting(rng: np.random.Generator) -> Lighting:
    brightness = rng.uniform(0.85, 1.15)
    tint = rng.uniform(-0.06, 0.06, size=3)
    return Lighting(
        gain=tuple(float(g) for g in brightness * (1 + tint)),
        gradient_strength=float(rng.uniform(0, 0.35)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
    )


def sample_sensor(rng: np.random.Generator) -> Sensor:
    blur = float(rng.uniform(0.5, 1.2)) if rng.random() < BLUR_PROBABILITY else 0.0
    return Sensor(noise_sigma=float(rng.uniform(1.5, 6.0)), blur_sigma=blur)


def compose_still(
    rng: np.random.Generator,
    backdrop: Backdrop,
    placed: Sequence[tuple[ThingSpec, Pose]],
    seed: int,
    split: str,
) -> Scene:
    """Light, paint and annotate a still layout (poses in image pixels, back to front)."""
    lighting, sensor = sample_lighting(rng), sample_sensor(rng)
    frame = paint(backdrop, placed, Camera.identity(backdrop.hw), lighting, sensor, rng)
    segments = build_segments(frame, [spec for spec, _ in placed])
    return Scene(
        image=frame.image,
        segment_ids=frame.segment_ids,
        segments=segments,
        phrases=referring_expressions(segments, backdrop.hw),
        seed=seed,
        split=split,
    )
