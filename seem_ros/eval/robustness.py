"""Robustness variants of the benchmark: the same tasks on pixels the clean split never shows.

``seem-ros eval --robustness`` adds a ``robustness`` block: for ``clean`` and each variant,
``miou_1click`` (one click at the object's most interior point), ``referring_miou`` with
``referring_miou_things`` / ``referring_miou_stuff``, ``pq`` and ``jf`` (memory + reference, as
in the video section); ``drop`` holds clean minus variant per metric, ``max_drop`` the worst.

Variants (every random choice from its own seed stream, independent of training's):

* ``seeds``: other scenes and clips of the same generator;
* ``photo``: the clean scenes and clips with real-photo texture over every stuff region (the
  ``eval`` photo set, which training never uses; in clips the texture moves with the world);
* ``camera``: camera degradations at random strengths, mixed (JPEG, Gaussian and motion blur,
  a coarser sensor, noise, white balance, brightness, gamma), one draw per scene or clip;
* ``lighting``: only white balance, brightness and gamma, the costliest of them;
* ``frame_640x480`` / ``frame_1280x720``: the clean seeds rendered as non-square camera frames.

Ground truth never changes with the pixels (same objects, same masks), except in ``seeds`` and
the frame sizes, whose scenes are rendered anew.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..data import render_clip, render_scene, scene_seed
from ..data.augment import AugmentConfig, Augmenter, apply_camera, sample_camera
from ..data.clips import WORLD_SCALE, Clip
from ..data.scene import Scene
from .clicks import simulate_clicks
from .metrics import JfAccumulator

if TYPE_CHECKING:
    from .benchmark import Benchmark

VARIANTS: tuple[str, ...] = (
    "seeds",
    "photo",
    "camera",
    "lighting",
    "frame_640x480",
    "frame_1280x720",
)
METRICS: tuple[str, ...] = (
    "miou_1click",
    "referring_miou",
    "referring_miou_things",
    "referring_miou_stuff",
    "pq",
    "jf",
)
FRAME_SIZES = {"frame_640x480": (480, 640), "frame_1280x720": (720, 1280)}

EVAL_PHOTO = AugmentConfig(
    photo_set="eval",
    photo_stuff_rate=1.0,
    photo_stuff_alpha=(0.7, 1.0),
    photo_thing_rate=0.0,
    camera_rate=0.0,
    aspect_rate=0.0,
)
EVAL_CAMERA = AugmentConfig(
    photo_stuff_rate=0.0,
    photo_thing_rate=0.0,
    aspect_rate=0.0,
    camera_rate=1.0,
    white_balance_rate=0.5,
    white_balance=(0.8, 1.2),
    brightness_rate=0.5,
    brightness=(0.6, 1.4),
    gamma_rate=0.5,
    gamma=(0.55, 1.8),
    blur_rate=0.4,
    blur_sigma=(0.6, 1.8),
    motion_blur_rate=0.3,
    motion_blur_length=(3.0, 9.0),
    rescale_rate=0.3,
    rescale=(0.4, 0.8),
    noise_rate=0.5,
    noise_sigma=(3.0, 12.0),
    jpeg_rate=0.5,
    jpeg_quality=(20.0, 80.0),
)
EVAL_LIGHTING = AugmentConfig(
    photo_stuff_rate=0.0,
    photo_thing_rate=0.0,
    aspect_rate=0.0,
    camera_rate=1.0,
    white_balance_rate=1.0,
    white_balance=(0.8, 1.2),
    brightness_rate=1.0,
    brightness=(0.6, 1.4),
    gamma_rate=1.0,
    gamma=(0.55, 1.8),
    blur_rate=0.0,
    motion_blur_rate=0.0,
    rescale_rate=0.0,
    noise_rate=0.0,
    jpeg_rate=0.0,
)
"""The benchmark's own strengths: fixed here, so a change of the training recipe never moves
the yardstick."""


class VariantWorld:
    """Scenes and clips of one variant, item by item, for a split."""

    def __init__(self, variant: str, split: str, image_size: int, clip_frames: int) -> None:
        if variant != "clean" and variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected clean or one of {VARIANTS}")
        self.variant = variant
        self.split = split
        self.clip_frames = clip_frames
        self.size = FRAME_SIZES.get(variant, (image_size, image_size))
        self._augmenter: Augmenter | None = None
        if variant == "photo":
            self._augmenter = Augmenter(EVAL_PHOTO)
        elif variant in ("camera", "lighting"):
            self._augmenter = Augmenter(EVAL_CAMERA if variant == "camera" else EVAL_LIGHTING)

    def _seed(self, index: int, stream: str) -> int:
        if self.variant == "seeds":
            return scene_seed(self.split, index, stream=f"robust_{stream}")
        return scene_seed(self.split, index, stream=stream)

    def _rng(self, index: int, stream: str) -> np.random.Generator:
        stream = f"robust_{self.variant}_{stream}"
        return np.random.default_rng(scene_seed(self.split, index, stream=stream))

    def scene(self, index: int) -> Scene:
        scene = render_scene(self._seed(index, "scene"), size=self.size, split=self.split)
        if self._augmenter is None:
            return scene
        return self._augmenter.scenes([scene], self._rng(index, "scene"))[0]

    def clip(self, index: int) -> Clip:
        clip = render_clip(
            self._seed(index, "clip"), n_frames=self.clip_frames, size=self.size, split=self.split
        )
        rng = self._rng(index, "clip")
        if self.variant == "photo":
            return _with_photo_stuff(clip, self._augmenter, rng)
        if self.variant in ("camera", "lighting"):
            assert self._augmenter is not None
            params = sample_camera(rng, self._augmenter.config)
            frames = [_with_image(f, apply_camera(f.image, params, rng)) for f in clip.frames]
            return _with_frames(clip, frames)
        return clip


def robustness(
    benchmark: Benchmark,
    *,
    scenes: int | None = None,
    clips: int | None = None,
    variants: tuple[str, ...] = VARIANTS,
) -> dict[str, Any]:
    """The ``robustness`` block for ``clean`` and each variant (``scenes`` / ``clips`` default to
    the benchmark's sizes)."""
    scenes = benchmark.size.scenes if scenes is None else scenes
    clips = benchmark.size.clips if clips is None else clips
    report: dict[str, Any] = {"scenes": scenes, "clips": clips}
    for variant in ("clean", *variants):
        world = VariantWorld(
            variant, benchmark.split, benchmark.frame_size, benchmark.size.clip_frames
        )
        report[variant] = measure(benchmark, world, scenes, clips)
    clean = report["clean"]
    report["drop"] = {
        variant: {
            metric: clean[metric] - report[variant][metric]
            for metric in METRICS
            if clean[metric] is not None and report[variant][metric] is not None
        }
        for variant in variants
    }
    report["max_drop"] = {
        variant: max(drops.values(), default=0.0) for variant, drops in report["drop"].items()
    }
    return report


def measure(benchmark: Benchmark, world: VariantWorld, scenes: int, clips: int) -> dict[str, Any]:
    """1-click mIoU, referring, PQ and J&F of the benchmark's segmenter on one variant."""
    from .benchmark import ReferringScores

    segmenter = benchmark.segmenter
    first_click: list[float] = []
    referring = ReferringScores()
    generic = benchmark.generic_scores()
    for index in benchmark._bar(range(scenes), f"robustness {world.variant}"):
        scene = world.scene(index)
        encoded = segmenter.encode_image(scene.image)
        things = sorted(scene.thing_segments, key=lambda s: -s.area)
        for segment in things[: benchmark.size.objects_per_scene]:
            ious = simulate_clicks(benchmark._click_predictor(encoded), segment.mask, max_clicks=1)
            first_click.append(ious[0])
        benchmark.refer_scene(scene, encoded, referring)
        benchmark.generic_scene(scene, encoded, generic)
    video = follow_clips(benchmark, world, clips)
    refer = referring.summary()
    return {
        "miou_1click": float(np.mean(first_click)) if first_click else None,
        "referring_miou": refer["miou"],
        "referring_miou_things": refer["miou_things"],
        "referring_miou_stuff": refer["miou_stuff"],
        "pq": generic.summary()["pq"],
        "jf": video.jf if video.count else None,
        "frame_hw": list(world.size),
    }


def follow_clips(benchmark: Benchmark, world: VariantWorld, clips: int) -> JfAccumulator:
    """J&F of the variant's first ``clips`` clips, each following its largest things from a
    click on the first frame (the benchmark's objects per clip), one score per object."""
    video = JfAccumulator()
    for index in benchmark._bar(range(clips), f"robustness {world.variant} video"):
        clip = world.clip(index)
        targets = sorted(clip.frames[0].thing_segments, key=lambda s: -s.area)
        ids = [t.id for t in targets[: benchmark.size.objects_per_clip]]
        benchmark.follow(clip.frames, ids, video, None)
    return video


def _with_image(scene: Scene, image: np.ndarray) -> Scene:
    return Scene(image, scene.segment_ids, scene.segments, scene.phrases, scene.seed, scene.split)


def _with_frames(clip: Clip, frames: list[Scene]) -> Clip:
    return Clip(
        frames,
        clip.seed,
        clip.split,
        clip.tracks,
        clip.cameras,
        clip.gains,
        clip.occluder_id,
        clip.occludee_id,
    )


def _with_photo_stuff(clip: Clip, augmenter: Augmenter | None, rng: np.random.Generator) -> Clip:
    """Photo texture fixed to the world: one layer per stuff class at world size, seen through
    each frame's camera, blended over that frame's stuff pixels."""
    assert augmenter is not None
    view_h, view_w = clip.frames[0].hw
    world_hw = (round(view_h * WORLD_SCALE), round(view_w * WORLD_SCALE))
    config = augmenter.config
    stuff_ids = sorted({s.id for f in clip.frames for s in f.stuff_segments})
    layers: dict[int, tuple[np.ndarray, float]] = {}
    for key in stuff_ids:
        alpha = float(rng.uniform(*config.photo_stuff_alpha))
        layers[key] = (augmenter.photos.texture(rng, world_hw), alpha)
    frames = []
    for frame, camera in zip(clip.frames, clip.cameras):
        image = frame.image.astype(np.float32)
        for segment in frame.stuff_segments:
            layer, alpha = layers[segment.id]
            view = _warp(layer, camera.matrix, (view_w, view_h))
            mask = segment.mask
            image[mask] = (1 - alpha) * image[mask] + alpha * view[mask]
        frames.append(_with_image(frame, np.clip(image + 0.5, 0, 255).astype(np.uint8)))
    return _with_frames(clip, frames)


def _warp(layer: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(
        layer, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
