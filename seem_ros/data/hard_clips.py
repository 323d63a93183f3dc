"""Hard clips: the cases where only an object's own history says which one it is.

Every hard clip holds all four at once, on its own random stream (independent of
:func:`~seem_ros.data.clips.render_clip`):

* look-alikes that cross paths: the target ``occludee_id`` and its exact twin ``twin_id`` (same
  category, colour, size and surface) start apart, move towards each other and overlap for a
  few frames around the first third of the clip, one passing in front of the other;
* full occlusion and reappearance: later, a large occluder (``occluder_id``) drawn in front
  of everything passes over the target, which is hidden entirely for several frames (3 to 5 in
  clips of 30: ``HIDDEN_FRAMES`` asked, fewer where the target must still clear the occluder by
  the last frame) and visible in the first and last frame;
* appearance change: the light's gain and colour change strongly across the clip (up to
  0.55x..1.45x) and its direction turns;
* camera shake: the camera jitters around a slow pan, frame to frame.

Twins and target are small and visible in the first frame, so a benchmark can click them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from seem_ros.data.backdrop import sample_backdrop
from seem_ros.data.clips import (
    OCCLUDER_CATEGORIES,
    WORLD_SCALE,
    Clip,
    Motion,
    Track,
    check_frame_count,
)
from seem_ros.data.layout import Pair, ThingSpec, make_thing, sample_pair, sample_radius
from seem_ros.data.painter import Camera, Lighting, build_segments, paint
from seem_ros.data.phrases import referring_expressions
from seem_ros.data.render import check_size, sample_sensor, scene_rng
from seem_ros.data.scene import FIRST_THING_ID, Scene
from seem_ros.data.shapes import Pose, inradius_factor, radius_for_area
from seem_ros.data.splits import check_split, pairs_for_split
from seem_ros.data.vocabulary import SIZES

HIDDEN_FRAMES = (4, 7)
"""Inclusive range of frames asked for the target to spend fully hidden."""
BACKGROUND_THINGS = (1, 3)
SHAKE = 0.008
"""Camera jitter, standard deviation as a share of the view's shorter side."""
_STREAM_HARD_CLIP = 5
_MARGIN_PX = 2.0


@dataclass(frozen=True, eq=False)
class HardClip(Clip):
    """A :class:`Clip` with a look-alike of the target; ``targets`` are the two twins."""

    twin_id: int = 0

    @property
    def targets(self) -> tuple[int, int]:
        return self.occludee_id, self.twin_id


def render_hard_clip(
    seed: int, n_frames: int = 30, size: tuple[int, int] = (256, 256), split: str = "test"
) -> HardClip:
    """A hard clip of ``n_frames`` frames of ``size`` (height, width); see the module docstring."""
    view_hw = check_size(size)
    check_split(split)
    check_frame_count(n_frames)
    rng = scene_rng(seed, _STREAM_HARD_CLIP)
    world_hw = (round(view_hw[0] * WORLD_SCALE), round(view_hw[1] * WORLD_SCALE))
    middle = np.array([world_hw[1] / 2, world_hw[0] / 2])
    backdrop = sample_backdrop(rng, world_hw)
    cameras = _shaky_cameras(rng, view_hw, middle, n_frames)
    pairs = pairs_for_split(split)
    background = _background(rng, pairs, view_hw, world_hw)
    first_id = FIRST_THING_ID + len(background)
    events = _events(rng, pairs, view_hw, middle, n_frames, first_id)
    cast = [*background, *events]  # back to front
    light, sensor = _lighting(rng), sample_sensor(rng)
    gain_start = np.asarray(light.gain) * rng.uniform(0.85, 1.1)
    gain_end = gain_start * rng.uniform(0.55, 1.45) * (1 + rng.uniform(-0.15, 0.15, size=3))
    turn = rng.uniform(-np.pi / 2, np.pi / 2)
    frames, gains = [], []
    for t, camera in enumerate(cameras):
        progress = t / max(n_frames - 1, 1)
        ease = progress * progress * (3 - 2 * progress)
        gain = tuple(float(g) for g in (1 - ease) * gain_start + ease * gain_end)
        lighting = Lighting(gain, light.gradient_strength, light.gradient_angle + turn * progress)
        placed = [(spec, motion.pose_at(t, world_hw)) for spec, motion in cast]
        frame = paint(backdrop, placed, camera, lighting, sensor, rng)
        segments = build_segments(frame, [spec for spec, _ in cast])
        phrases = referring_expressions(segments, view_hw)
        frames.append(Scene(frame.image, frame.segment_ids, segments, phrases, seed, split))
        gains.append(gain)
    tracks = {s.id: Track(s.id, s.category, s.colour, s.size) for s, _ in cast}
    target, twin, occluder = (spec.id for spec, _ in _event_order(events))
    return HardClip(frames, seed, split, tracks, cameras, gains, occluder, target, twin_id=twin)


def _event_order(events: list[tuple[ThingSpec, Motion]]) -> list[tuple[ThingSpec, Motion]]:
    """(target, twin, occluder) from the drawing order, which puts the occluder last and the
    twin before or after the target."""
    *twins, occluder = events
    target = min(twins, key=lambda item: item[0].id)
    twin = max(twins, key=lambda item: item[0].id)
    return [target, twin, occluder]


def _lighting(rng: np.random.Generator) -> Lighting:
    return Lighting(
        gain=tuple(float(g) for g in rng.uniform(0.9, 1.1) * (1 + rng.uniform(-0.06, 0.06, 3))),
        gradient_strength=float(rng.uniform(0.15, 0.5)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
    )


def _shaky_cameras(
    rng: np.random.Generator, view_hw: tuple[int, int], middle: np.ndarray, n_frames: int
) -> list[Camera]:
    side = min(view_hw)
    heading = rng.uniform(0, 2 * np.pi)
    pan = rng.uniform(0.02, 0.06) * side * np.array([np.cos(heading), np.sin(heading)])
    zoom = rng.uniform(1.0, 1.06)
    cameras = []
    for t in range(n_frames):
        progress = t / max(n_frames - 1, 1)
        shake = rng.normal(0.0, SHAKE * side, size=2) if t else np.zeros(2)
        centre = middle + (progress - 0.5) * pan + shake
        jitter = float(np.clip(zoom * (1 + rng.normal(0, 0.01)), 1.0, 1.15)) if t else zoom
        cameras.append(Camera(view_hw, (float(centre[0]), float(centre[1])), jitter))
    return cameras


def _background(
    rng: np.random.Generator, pairs: tuple[Pair, ...], view_hw: tuple[int, int], world_hw
) -> list[tuple[ThingSpec, Motion]]:
    count = int(rng.integers(BACKGROUND_THINGS[0], BACKGROUND_THINGS[1] + 1))
    cast = []
    for index in range(count):
        spec = make_thing(rng, FIRST_THING_ID + index, sample_pair(rng, pairs), "large")
        radius = sample_radius(rng, spec.category, spec.size, view_hw)
        x, y = rng.uniform(0.2, 0.8) * world_hw[1], rng.uniform(0.2, 0.8) * world_hw[0]
        heading = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.3, 1.5) * min(view_hw) / 256
        cast.append(
            (
                spec,
                Motion(
                    Pose(float(x), float(y), radius, float(rng.uniform(0, 2 * np.pi))),
                    (float(speed * np.cos(heading)), float(speed * np.sin(heading))),
                    spin=float(rng.uniform(-0.04, 0.04)),
                ),
            )
        )
    return cast


def _events(
    rng: np.random.Generator,
    pairs: tuple[Pair, ...],
    view_hw: tuple[int, int],
    middle: np.ndarray,
    n_frames: int,
    first_id: int,
) -> list[tuple[ThingSpec, Motion]]:
    """The twins (crossing) and the occluder (hiding the target), in drawing order."""
    side, area = min(view_hw), view_hw[0] * view_hw[1]
    occluder_category = OCCLUDER_CATEGORIES[int(rng.integers(len(OCCLUDER_CATEGORIES)))]
    occluder_pair = sample_pair(rng, pairs, category=occluder_category)
    occluder_radius = radius_for_area(occluder_category, rng.uniform(0.09, 0.11) * area)
    inradius = occluder_radius * inradius_factor(occluder_category)
    twin_pair = sample_pair(rng, pairs, category="circle", exclude=frozenset({occluder_pair}))
    for _ in range(8):  # prefer any category that still hides behind the occluder
        candidate = sample_pair(rng, pairs, exclude=frozenset({occluder_pair}))
        small = radius_for_area(candidate[1], SIZES["small"][0] * area)
        if inradius - small - _MARGIN_PX > 0.05 * side:
            twin_pair = candidate
            break
    twin_radius = radius_for_area(twin_pair[1], SIZES["small"][0] * area)
    hide_span = inradius - twin_radius - _MARGIN_PX  # hidden while nearer than this

    last = max(n_frames - 1, 1)
    hidden = rng.integers(HIDDEN_FRAMES[0], HIDDEN_FRAMES[1] + 1)
    clear = occluder_radius + twin_radius + _MARGIN_PX  # visible while farther than this
    t_hide = rng.uniform(0.64, 0.7) * last
    relative_speed = max(2 * hide_span / hidden, clear / max(min(t_hide, last - t_hide) - 0.5, 0.5))
    target_speed = rng.uniform(0.008, 0.014) * side
    heading = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(heading), np.sin(heading)])
    v_target = target_speed * direction
    v_occluder = v_target - relative_speed * direction
    # the target's path is centred in the view, so it starts and ends inside it
    hide_point = middle + v_target * (t_hide - last / 2) + rng.uniform(-0.05, 0.05, 2) * side
    start_target = hide_point - v_target * t_hide

    t_cross = rng.uniform(0.25, 0.33) * last
    crossing = start_target + v_target * t_cross
    normal = np.array([-direction[1], direction[0]])
    offset = normal * rng.uniform(-0.5, 0.5) * twin_radius
    turn = rng.uniform(np.pi * 0.7, np.pi * 1.3)
    twin_direction = np.array([np.cos(heading + turn), np.sin(heading + turn)])
    # fast enough that the twins start clearly apart (0.8 radii between their circumcircles),
    # so that the first click can pick out one of them
    twin_speed = target_speed * rng.uniform(2.0, 3.0)
    for _ in range(40):
        gap = np.linalg.norm(offset - (twin_speed * twin_direction - v_target) * t_cross)
        if gap >= 2.8 * twin_radius:
            break
        twin_speed *= 1.1
    v_twin = twin_speed * twin_direction
    start_twin = crossing + offset - v_twin * t_cross

    target = make_thing(rng, first_id, twin_pair, "small")
    twin = dataclasses.replace(target, id=first_id + 1)
    occluder = make_thing(rng, first_id + 2, occluder_pair, "large")

    def motion(start: np.ndarray, velocity: np.ndarray, radius: float, spin: float) -> Motion:
        pose = Pose(float(start[0]), float(start[1]), radius, float(rng.uniform(0, 2 * np.pi)))
        return Motion(pose, (float(velocity[0]), float(velocity[1])), spin, bounce=False)

    target_motion = motion(start_target, v_target, twin_radius, float(rng.uniform(-0.08, 0.08)))
    twin_motion = motion(start_twin, v_twin, twin_radius, float(rng.uniform(-0.08, 0.08)))
    occluder_start = hide_point - v_occluder * t_hide
    occluder_motion = motion(
        occluder_start, v_occluder, occluder_radius, float(rng.uniform(-0.03, 0.03))
    )
    twins = [(target, target_motion), (twin, twin_motion)]
    if rng.random() < 0.5:
        twins.reverse()  # the twin passes behind the target instead of in front
    return [*twins, (occluder, occluder_motion)]
