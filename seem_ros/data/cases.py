"""Benchmark cases with a known answer: open-vocabulary and text + click composition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from seem_ros.data.backdrop import sample_backdrop
from seem_ros.data.layout import (
    Pair,
    StillPlacer,
    make_thing,
    sample_pair,
    sample_radius,
    sample_size,
)
from seem_ros.data.render import (
    add_random_things,
    check_size,
    compose_still,
    next_thing_id,
    scene_rng,
)
from seem_ros.data.scene import Scene
from seem_ros.data.shapes import Pose, rasterise
from seem_ros.data.splits import check_split, pairs_for_split
from seem_ros.data.vocabulary import HELD_OUT_PAIRS

_STREAM_OPENVOCAB = 3
_STREAM_COMPOSITION = 4
_MAX_LAYOUT_ATTEMPTS = 50


@dataclass(frozen=True, eq=False)
class OpenVocabCase:
    """A scene holding an object of a held-out (colour, category) pair, named by `text`."""

    scene: Scene
    text: str
    target_id: int
    pair: tuple[str, str]


@dataclass(frozen=True, eq=False)
class CompositionCase:
    """A text + click prompt where neither prompt alone gives the answer.

    click_xy: (x, y) pixel of the click.
    distractor_id: the other instance the text matches.
    occluder_id: the object the click actually lands on.
    """

    scene: Scene
    text: str
    click_xy: tuple[int, int]
    target_id: int
    distractor_id: int
    occluder_id: int


def render_openvocab_case(
    seed: int, split: str = "test", size: tuple[int, int] = (256, 256)
) -> OpenVocabCase:
    """A val/test scene with one object of a held-out pair and a phrase naming it.

    No other object shares the target's (colour, category), so "the purple star" is
    unique. Train never holds such objects, so asking for one there is an error.
    """
    if check_split(split) == "train":
        raise ValueError("held-out pairs never appear in the train split; use 'val' or 'test'")
    image_hw = check_size(size)
    rng = scene_rng(seed, _STREAM_OPENVOCAB)
    pair = sorted(HELD_OUT_PAIRS)[int(rng.integers(len(HELD_OUT_PAIRS)))]
    others, exclude = pairs_for_split(split), frozenset({pair})
    for _ in range(_MAX_LAYOUT_ATTEMPTS):
        placer = StillPlacer(image_hw)
        add_random_things(rng, placer, others, int(rng.integers(1, 4)), exclude)
        target = make_thing(rng, next_thing_id(placer), pair, sample_size(rng))
        if placer.place(rng, target):
            add_random_things(rng, placer, others, int(rng.integers(0, 3)), exclude)
            break
    else:
        raise RuntimeError(f"could not place a held-out object for seed {seed}")
    scene = compose_still(rng, sample_backdrop(rng, image_hw), placer.placed, seed, split)
    colour, category = pair
    return OpenVocabCase(scene, f"the {colour} {category}", target.id, pair)


def render_composition_case(
    seed: int, split: str = "test", size: tuple[int, int] = (256, 256)
) -> CompositionCase:
    """A scene where the text matches two objects and the click lands on a third.

    Construction: two large things of the same colour and category (the target and the
    distractor) are placed without touching; a small thing of a different colour and
    category (the occluder) is placed on top of the target, overlapping it. The click is
    the pixel of the occluder's visible mask, inside the target's amodal mask, farthest
    from the edge of that overlap. So the text ("blue square") alone matches target and
    distractor, the click alone selects the occluder, and only the pair resolves to the
    target: the text-matching instance whose amodal region contains the click. A few
    unrelated things are placed first, behind all three.
    """
    image_hw = check_size(size)
    pairs = pairs_for_split(check_split(split))
    rng = scene_rng(seed, _STREAM_COMPOSITION)
    for _ in range(_MAX_LAYOUT_ATTEMPTS):
        layout = _try_composition_layout(rng, image_hw, pairs)
        if layout is not None:
            break
    else:
        raise RuntimeError(f"could not build a composition layout for seed {seed}")
    placer = layout.placer
    overlap = placer.raster(layout.occluder_id).mask & placer.raster(layout.target_id).mask
    scene = compose_still(rng, sample_backdrop(rng, image_hw), placer.placed, seed, split)
    colour, category = layout.pair
    return CompositionCase(
        scene=scene,
        text=f"{colour} {category}",
        click_xy=_deepest_pixel(overlap),
        target_id=layout.target_id,
        distractor_id=layout.distractor_id,
        occluder_id=layout.occluder_id,
    )


@dataclass(frozen=True)
class _CompositionLayout:
    placer: StillPlacer
    pair: Pair
    target_id: int
    distractor_id: int
    occluder_id: int


def _try_composition_layout(
    rng: np.random.Generator, image_hw: tuple[int, int], pairs: Sequence[Pair]
) -> _CompositionLayout | None:
    """One attempt at the layout of `render_composition_case`; None if something did not fit."""
    placer = StillPlacer(image_hw)
    pair = sample_pair(rng, pairs)
    unrelated = frozenset(p for p in pairs if p[0] == pair[0] or p[1] == pair[1])
    add_random_things(rng, placer, pairs, int(rng.integers(1, 4)), unrelated)
    target = make_thing(rng, next_thing_id(placer), pair, "large")
    if not placer.place(rng, target, attempts=20):
        return None
    target_raster = placer.raster(target.id)
    distractor = make_thing(rng, next_thing_id(placer), pair, "large")
    for _ in range(20):
        pose = placer.propose(rng, sample_radius(rng, pair[1], "large", image_hw))
        apart = not np.any(rasterise(pair[1], pose, image_hw).mask & target_raster.mask)
        if apart and placer.try_add(distractor, pose):
            break
    else:
        return None
    occluder = make_thing(
        rng, next_thing_id(placer), sample_pair(rng, pairs, exclude=unrelated), "small"
    )
    target_pose = next(pose for spec, pose in placer.placed if spec.id == target.id)
    for _ in range(20):
        heading = rng.uniform(0, 2 * np.pi)
        distance = target_pose.radius * rng.uniform(0.45, 0.8)
        pose = Pose(
            target_pose.x + distance * np.cos(heading),
            target_pose.y + distance * np.sin(heading),
            sample_radius(rng, occluder.category, "small", image_hw),
            float(rng.uniform(0, 2 * np.pi)),
        )
        if placer.try_add(occluder, pose):
            if np.any(placer.raster(occluder.id).mask & target_raster.mask):
                return _CompositionLayout(placer, pair, target.id, distractor.id, occluder.id)
            return None
    return None


def _deepest_pixel(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of `region` farthest from its boundary."""
    distance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(col), int(row)
