"""Turning a backdrop and posed objects into pixels and panoptic ground truth.

One code path serves still scenes and clip frames: a `Camera` picks the view of the
backdrop, objects are drawn back to front (later ones occlude earlier ones), then
global lighting and the sensor (blur, noise) are applied to the image only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from seem_ros.data.backdrop import Backdrop
from seem_ros.data.layout import ThingSpec
from seem_ros.data.scene import Segment, stuff_segment_id
from seem_ros.data.shapes import Pose, Raster, rasterise
from seem_ros.data.vocabulary import STUFF_CATEGORIES


@dataclass(frozen=True)
class Camera:
    """Maps world pixels to view pixels: view = zoom * (world - centre) + view_centre."""

    view_hw: tuple[int, int]
    centre: tuple[float, float]
    zoom: float = 1.0

    def __post_init__(self) -> None:
        if self.zoom <= 0:
            raise ValueError(f"camera zoom must be positive, got {self.zoom}")

    @classmethod
    def identity(cls, image_hw: tuple[int, int]) -> Camera:
        """The camera whose view is the world itself (still scenes)."""
        return cls(image_hw, (image_hw[1] / 2, image_hw[0] / 2), 1.0)

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine world -> view matrix."""
        height, width = self.view_hw
        z = self.zoom
        return np.array(
            [[z, 0, width / 2 - z * self.centre[0]], [0, z, height / 2 - z * self.centre[1]]]
        )

    def to_view(self, pose: Pose) -> Pose:
        (a, _, tx), (_, d, ty) = self.matrix
        return Pose(a * pose.x + tx, d * pose.y + ty, pose.radius * self.zoom, pose.angle)


@dataclass(frozen=True)
class Lighting:
    """Global illumination: per-channel gain and a linear brightness ramp across the image."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gradient_strength: float = 0.0
    gradient_angle: float = 0.0

    def apply(self, image: np.ndarray) -> None:
        """Relight a float32 (H, W, 3) image in place."""
        height, width = image.shape[:2]
        cos, sin = np.cos(self.gradient_angle), np.sin(self.gradient_angle)
        xs = np.linspace(-0.5, 0.5, width, dtype=np.float32) * np.float32(cos)
        ys = np.linspace(-0.5, 0.5, height, dtype=np.float32) * np.float32(sin)
        ramp = np.float32(1) + np.float32(self.gradient_strength) * (ys[:, None] + xs[None, :])
        image *= ramp[..., None]
        image *= np.asarray(self.gain, dtype=np.float32)


@dataclass(frozen=True)
class Sensor:
    """Camera imperfections: Gaussian blur (sigma in pixels, 0 = sharp) and read noise."""

    noise_sigma: float = 0.0
    blur_sigma: float = 0.0

    def capture(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur, add noise and quantise a float32 (H, W, 3) image to uint8."""
        if self.blur_sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), self.blur_sigma)
        if self.noise_sigma > 0:
            noise = rng.standard_normal(image.shape, dtype=np.float32)
            noise *= np.float32(self.noise_sigma)
            image = image + noise
        return np.clip(image + np.float32(0.5), 0, 255).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class PaintedFrame:
    """image: (H, W, 3) uint8; segment_ids: (H, W) int32; amodal: thing id -> full shape."""

    image: np.ndarray
    segment_ids: np.ndarray
    amodal: dict[int, Raster]


def paint(
    backdrop: Backdrop,
    things: Sequence[tuple[ThingSpec, Pose]],
    camera: Camera,
    lighting: Lighting,
    sensor: Sensor,
    rng: np.random.Generator,
) -> PaintedFrame:
    """Render `things` (world poses, back to front) over `backdrop` as seen by `camera`."""
    height, width = camera.view_hw
    if camera == Camera.identity(backdrop.hw):
        image, labels = backdrop.image.copy(), backdrop.labels
    else:
        matrix = camera.matrix
        image = cv2.warpAffine(
            backdrop.image, matrix, (width, height), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
        labels = cv2.warpAffine(
            backdrop.labels, matrix, (width, height), flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
    segment_ids = labels.astype(np.int32) + np.int32(stuff_segment_id(0))
    amodal: dict[int, Raster] = {}
    for spec, world_pose in things:
        pose = camera.to_view(world_pose)
        raster = rasterise(spec.category, pose, (height, width))
        if raster.is_empty:
            continue
        amodal[spec.id] = raster
        x0, y0, x1, y1 = raster.bbox
        inside = raster.mask[y0:y1, x0:x1]
        image_crop = image[y0:y1, x0:x1]
        image_crop[inside] = spec.appearance.colour_field(pose, raster.bbox)[inside]
        segment_ids[y0:y1, x0:x1][inside] = spec.id
    lighting.apply(image)
    return PaintedFrame(sensor.capture(image, rng), segment_ids, amodal)


def build_segments(frame: PaintedFrame, things: Sequence[ThingSpec]) -> list[Segment]:
    """Segments with a visible pixel: stuff in category order, then `things` in the given order."""
    ids = frame.segment_ids
    segments = []
    for index, category in enumerate(STUFF_CATEGORIES):
        mask = ids == stuff_segment_id(index)
        area = int(np.count_nonzero(mask))
        if area:
            segments.append(
                Segment(stuff_segment_id(index), category, False, mask, _bbox(mask), area)
            )
    for spec in things:
        raster = frame.amodal.get(spec.id)
        if raster is None:
            continue
        mask = np.zeros_like(raster.mask)
        x0, y0, x1, y1 = raster.bbox
        mask[y0:y1, x0:x1] = ids[y0:y1, x0:x1] == spec.id
        area = int(np.count_nonzero(mask))
        if area:
            segments.append(
                Segment(
                    spec.id, spec.category, True, mask, _bbox(mask), area,
                    colour=spec.colour, size=spec.size, amodal_mask=raster.mask,
                )
            )  # fmt: skip
    return segments


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
