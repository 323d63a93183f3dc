"""Video clips: a moving camera over a moving world, with a guaranteed occlusion.

The world is a backdrop 1.5x the view in each direction. The camera pans along a
straight line and zooms between 1.0 and 1.15; things drift (bouncing off the world's
edges) and spin; a global brightness and colour ramp runs from the first frame to the
last. Segment ids are track identities: a thing has the same id in every frame it is
visible in and is simply absent from frames where it is not.

Occlusion and reappearance are built in: a large round-ish "occluder" (circle, square
or hexagon) drawn in front of everything stands near the middle of the camera path,
and a small "occludee" crosses behind it in a straight line through its centre. The
occludee fits inside the occluder's inscribed circle, so it is hidden entirely while
its centre is within `inradius - circumradius` of the occluder's centre. Its speed is
set so that at the first and last frame it is just clear of the occluder's circumcircle,
hence visible. With 10 frames or more the pass always has at least one hidden frame.

Look-alikes: some background things are exact twins of an earlier one (same category,
colour, size and surface), the "two identical mugs" case where only an object's own history,
not its appearance, says which one is being followed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from seem_ros.data.backdrop import sample_backdrop
from seem_ros.data.layout import (
    Pair,
    ThingSpec,
    make_thing,
    sample_pair,
    sample_radius,
    sample_size,
)
from seem_ros.data.painter import Camera, Lighting, build_segments, paint
from seem_ros.data.phrases import referring_expressions
from seem_ros.data.render import check_size, sample_lighting, sample_sensor, scene_rng
from seem_ros.data.scene import FIRST_THING_ID, Scene
from seem_ros.data.shapes import Pose, inradius_factor, radius_for_area
from seem_ros.data.splits import check_split, pairs_for_split
from seem_ros.data.vocabulary import SIZES

WORLD_SCALE = 1.5
OCCLUDER_CATEGORIES: tuple[str, ...] = ("circle", "square", "hexagon")
OTHER_THING_COUNT = (2, 5)
TWIN_RATE = 0.3
"""Chance that a background thing is an exact look-alike of an earlier one."""
_STREAM_CLIP = 2
_HIDE_MARGIN_PX = 2.0


@dataclass(frozen=True)
class Track:
    """What a tracked thing is; where it is lives in each frame's segments."""

    id: int
    category: str
    colour: str
    size: str


@dataclass(frozen=True)
class Motion:
    """Start pose in world pixels, velocity (px/frame) and spin (rad/frame)."""

    start: Pose
    velocity: tuple[float, float]
    spin: float
    bounce: bool = True

    def pose_at(self, frame: int, world_hw: tuple[int, int]) -> Pose:
        x = self.start.x + self.velocity[0] * frame
        y = self.start.y + self.velocity[1] * frame
        if self.bounce:
            r = self.start.radius
            x = _reflect(x, r, world_hw[1] - r)
            y = _reflect(y, r, world_hw[0] - r)
        return Pose(x, y, self.start.radius, self.start.angle + self.spin * frame)


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames of one clip plus what generated them.

    cameras[t], gains[t]: the camera and RGB light gain of frame t.
    occluder_id, occludee_id: track ids of the built-in occlusion event.
    """

    frames: list[Scene]
    seed: int
    split: str
    tracks: dict[int, Track]
    cameras: list[Camera]
    gains: list[tuple[float, float, float]]
    occluder_id: int
    occludee_id: int

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Scene:
        return self.frames[index]

    def __iter__(self) -> Iterator[Scene]:
        return iter(self.frames)

    def visible_frames(self, track_id: int) -> list[int]:
        """Indices of the frames in which the track has at least one visible pixel."""
        return [t for t, f in enumerate(self.frames) if any(s.id == track_id for s in f.segments)]


def check_frame_count(n_frames: object) -> int:
    """A clip's frame count: a positive int (ValueError otherwise)."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    return n_frames


def render_clip(
    seed: int, n_frames: int = 30, size: tuple[int, int] = (256, 256), split: str = "train"
) -> Clip:
    """A clip of `n_frames` frames of `size` (height, width); see the module docstring."""
    view_hw = check_size(size)
    check_split(split)
    check_frame_count(n_frames)
    rng = scene_rng(seed, _STREAM_CLIP)
    world_hw = (round(view_hw[0] * WORLD_SCALE), round(view_hw[1] * WORLD_SCALE))
    backdrop = sample_backdrop(rng, world_hw)
    cameras = _camera_path(rng, view_hw, world_hw, n_frames)
    pairs = pairs_for_split(split)
    others = _other_things(rng, pairs, view_hw, world_hw)
    occlusion = _occlusion_pass(
        rng, pairs, view_hw, world_hw, n_frames, FIRST_THING_ID + len(others)
    )
    cast = [*others, *occlusion]  # back to front
    light, sensor = sample_lighting(rng), sample_sensor(rng)
    gain_start = np.asarray(light.gain) * rng.uniform(0.85, 1.05)
    gain_end = gain_start * rng.uniform(0.7, 1.3) * (1 + rng.uniform(-0.08, 0.08, size=3))
    frames, gains = [], []
    for t, camera in enumerate(cameras):
        progress = t / max(n_frames - 1, 1)
        gain = tuple(float(g) for g in (1 - progress) * gain_start + progress * gain_end)
        lighting = Lighting(gain, light.gradient_strength, light.gradient_angle)
        placed = [(spec, motion.pose_at(t, world_hw)) for spec, motion in cast]
        frame = paint(backdrop, placed, camera, lighting, sensor, rng)
        segments = build_segments(frame, [spec for spec, _ in cast])
        phrases = referring_expressions(segments, view_hw)
        frames.append(Scene(frame.image, frame.segment_ids, segments, phrases, seed, split))
        gains.append(gain)
    tracks = {s.id: Track(s.id, s.category, s.colour, s.size) for s, _ in cast}
    occludee, occluder = occlusion[0][0].id, occlusion[1][0].id
    return Clip(frames, seed, split, tracks, cameras, gains, occluder, occludee)


def _camera_path(
    rng: np.random.Generator, view_hw: tuple[int, int], world_hw: tuple[int, int], n_frames: int
) -> list[Camera]:
    height, width = view_hw
    heading = rng.uniform(0, 2 * np.pi)
    pan = rng.uniform(0.05, 0.14) * min(view_hw) * np.array([np.cos(heading), np.sin(heading)])
    middle = np.array([world_hw[1] / 2, world_hw[0] / 2])
    zoom_start = rng.uniform(1.0, 1.08)
    zoom_end = float(np.clip(zoom_start * rng.uniform(0.93, 1.12), 1.0, 1.15))
    cameras = []
    for t in range(n_frames):
        progress = t / max(n_frames - 1, 1)
        centre = middle + (progress - 0.5) * pan
        zoom = (1 - progress) * zoom_start + progress * zoom_end
        cameras.append(Camera((height, width), (float(centre[0]), float(centre[1])), float(zoom)))
    return cameras


def _other_things(
    rng: np.random.Generator,
    pairs: tuple[Pair, ...],
    view_hw: tuple[int, int],
    world_hw: tuple[int, int],
) -> list[tuple[ThingSpec, Motion]]:
    """Drifting, spinning background things, each bouncing inside the world."""
    count = int(rng.integers(OTHER_THING_COUNT[0], OTHER_THING_COUNT[1] + 1))
    world_h, world_w = world_hw
    cast: list[tuple[ThingSpec, Motion]] = []
    for index in range(count):
        category = None
        twin_of = None
        draw = rng.random()
        if cast and draw < TWIN_RATE:
            twin_of = cast[int(rng.integers(len(cast)))][0]
        elif cast and draw < TWIN_RATE + 0.4:
            category = cast[int(rng.integers(len(cast)))][0].category
        if twin_of is not None:
            spec = dataclasses.replace(twin_of, id=FIRST_THING_ID + index)
        else:
            spec = make_thing(
                rng,
                FIRST_THING_ID + index,
                sample_pair(rng, pairs, category=category),
                sample_size(rng),
            )
        radius = sample_radius(rng, spec.category, spec.size, view_hw)
        x = rng.uniform(0.15, 0.85) * world_w
        y = rng.uniform(0.15, 0.85) * world_h
        speed, heading = rng.uniform(0.5, 3.0), rng.uniform(0, 2 * np.pi)
        motion = Motion(
            start=Pose(float(x), float(y), radius, float(rng.uniform(0, 2 * np.pi))),
            velocity=(float(speed * np.cos(heading)), float(speed * np.sin(heading))),
            spin=float(rng.uniform(-0.06, 0.06)),
        )
        cast.append((spec, motion))
    return cast


def _occlusion_pass(
    rng: np.random.Generator,
    pairs: tuple[Pair, ...],
    view_hw: tuple[int, int],
    world_hw: tuple[int, int],
    n_frames: int,
    first_id: int,
) -> list[tuple[ThingSpec, Motion]]:
    """[occludee, occluder]: a small thing crossing straight behind a large one."""
    view_area = view_hw[0] * view_hw[1]
    occluder_category = OCCLUDER_CATEGORIES[int(rng.integers(len(OCCLUDER_CATEGORIES)))]
    occluder_pair = sample_pair(rng, pairs, category=occluder_category)
    occluder_radius = radius_for_area(
        occluder_category, rng.uniform(0.085, SIZES["large"][1]) * view_area
    )
    inradius = occluder_radius * inradius_factor(occluder_category)
    small_area = rng.uniform(SIZES["small"][0], SIZES["small"][0] * 1.15) * view_area
    min_hide = 0.04 * min(view_hw)
    occludee_pair = sample_pair(rng, pairs, exclude=frozenset({occluder_pair}))
    if inradius - radius_for_area(occludee_pair[1], small_area) - _HIDE_MARGIN_PX < min_hide:
        occludee_pair = sample_pair(
            rng, pairs, category="circle", exclude=frozenset({occluder_pair})
        )
    occludee_radius = radius_for_area(occludee_pair[1], small_area)

    jitter = rng.uniform(-0.03, 0.03, size=2) * min(view_hw)
    centre = np.array([world_hw[1] / 2, world_hw[0] / 2]) + jitter
    heading = rng.uniform(0, 2 * np.pi)
    half_time = max((n_frames - 1) / 2, 0.5)
    speed = (occluder_radius + occludee_radius + _HIDE_MARGIN_PX) / half_time
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
    start = centre - velocity * half_time
    occludee = make_thing(rng, first_id, occludee_pair, "small")
    occluder = make_thing(rng, first_id + 1, occluder_pair, "large")
    occludee_motion = Motion(
        Pose(float(start[0]), float(start[1]), occludee_radius, float(rng.uniform(0, 2 * np.pi))),
        (float(velocity[0]), float(velocity[1])),
        spin=float(rng.uniform(-0.08, 0.08)),
        bounce=False,
    )
    occluder_motion = Motion(
        Pose(float(centre[0]), float(centre[1]), occluder_radius, float(rng.uniform(0, 2 * np.pi))),
        (0.0, 0.0),
        spin=float(rng.uniform(-0.03, 0.03)),
        bounce=False,
    )
    return [(occludee, occludee_motion), (occluder, occluder_motion)]


def _reflect(value: float, low: float, high: float) -> float:
    """Fold `value` back into [low, high] as if it bounced off both ends."""
    span = high - low
    if span <= 0:
        return (low + high) / 2
    offset = (value - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)
