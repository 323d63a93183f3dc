"""The recipe's augmentation: real-photo textures, camera degradations and non-square frames.

One seeded module for everything that trains (the trainer, a distillation pipeline) and for the
benchmark's robustness variants (with their own strengths, photos and seeds):

* photo textures (need masks): a stuff region blended with a photo crop; a thing either
  *tinted* by a photo's light and shade (its colour stays, so its colour name still holds) or
  *filled* with a photo, after which its colour may not be named: the fill is reported in
  ``recoloured`` and :meth:`Augmenter.scenes` drops the phrases that name that colour, so a
  held-out colour x category pair can never be shown under its name;
* camera degradations at random strengths: white balance, brightness and gamma, Gaussian and
  motion blur, a lower-resolution sensor (down, then up), sensor noise, JPEG;
* non-square frames: a crop to 3:4 or 9:16 (height : width), which the model then sees
  letterboxed exactly as at inference (:func:`seem_ros.transforms.model_transform`).

from seem_ros.data.augment import AugmentConfig, Augmenter
augment = Augmenter(AugmentConfig())
out = augment(image, masks, rng=np.random.default_rng(0))  # or augment(image, rng=...) alone
frames = augment.scenes([scene], rng)  # Scenes: ground truth cropped, phrases rebuilt

Cost on a busy 2-core CPU: about 20 ms per 256 x 256 scene with the default config (photo
layers, camera, ground truth and phrases rebuilt), against 2-3 s for a training step.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from seem_ros.data.photos import PhotoBank
from seem_ros.data.phrases import referring_expressions
from seem_ros.data.scene import Scene, Segment

Range = tuple[float, float]


@dataclass(frozen=True)
class AugmentConfig:
    """Chances (per image, or per region for photo fills) and strength ranges; every range is
    sampled uniformly, gamma log-uniformly. ``AugmentConfig.off()`` changes nothing."""

    # real-photo textures
    photo_set: str = "train"
    photo_stuff_rate: float = 0.4  # per stuff region
    photo_stuff_alpha: Range = (0.5, 1.0)
    photo_thing_rate: float = 0.2  # per thing
    photo_thing_fill_share: float = 0.3  # of those: a full photo fill (colour then unnamed)
    photo_thing_tint: Range = (0.3, 0.8)  # strength of the photo's shading on a tinted thing
    # camera degradations (each image gets them at all with `camera_rate`)
    camera_rate: float = 0.7
    white_balance_rate: float = 0.35
    white_balance: Range = (0.8, 1.2)  # per-channel gain
    brightness_rate: float = 0.4
    brightness: Range = (0.6, 1.4)
    gamma_rate: float = 0.4
    gamma: Range = (0.55, 1.8)
    blur_rate: float = 0.2
    blur_sigma: Range = (0.5, 2.0)
    motion_blur_rate: float = 0.15
    motion_blur_length: Range = (3.0, 11.0)  # pixels
    rescale_rate: float = 0.2
    rescale: Range = (0.35, 0.8)  # the sensor's resolution as a share of the frame's
    noise_rate: float = 0.35
    noise_sigma: Range = (2.0, 12.0)  # grey levels
    jpeg_rate: float = 0.3
    jpeg_quality: Range = (15.0, 85.0)
    # non-square frames: crop to one of these (height, width) aspects
    aspect_rate: float = 0.3
    aspects: tuple[tuple[int, int], ...] = ((3, 4), (9, 16))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") or f.name == "photo_thing_fill_share":
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"augment.{f.name} must be in [0, 1], got {value}")
            elif (
                isinstance(value, tuple)
                and len(value) == 2
                and f.name != "aspects"
                and not value[0] <= value[1]
            ):
                raise ValueError(f"augment.{f.name} must be (low, high), got {value}")
        if any(len(a) != 2 or min(a) <= 0 for a in self.aspects):
            raise ValueError(f"augment.aspects must be (height, width) pairs, got {self.aspects}")

    @classmethod
    def off(cls) -> AugmentConfig:
        """Every chance zero: the identity."""
        zeros = {f.name: 0.0 for f in dataclasses.fields(cls) if f.name.endswith("_rate")}
        return cls(**zeros)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """From YAML: lists become tuples; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown augment keys: {sorted(unknown)}")
        values = {}
        for key, value in data.items():
            if key == "aspects":
                value = tuple(tuple(int(n) for n in a) for a in value)
            elif isinstance(value, list):
                value = tuple(float(v) for v in value)
            values[key] = value
        return cls(**values)

    @property
    def uses_photos(self) -> bool:
        return self.photo_stuff_rate > 0 or self.photo_thing_rate > 0


@dataclass(frozen=True)
class CameraParams:
    """One draw of camera degradations (neutral values: nothing happens)."""

    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    brightness: float = 1.0
    gamma: float = 1.0
    blur_sigma: float = 0.0
    motion_blur: tuple[float, float] = (0.0, 0.0)  # (length px, angle rad)
    rescale: float = 1.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 0  # 0: no JPEG

    @property
    def is_neutral(self) -> bool:
        return self == CameraParams()


def sample_camera(rng: np.random.Generator, config: AugmentConfig) -> CameraParams:
    """Each degradation on with its own chance, at a uniform strength in its range."""
    params: dict[str, Any] = {}
    if rng.random() < config.white_balance_rate:
        params["white_balance"] = tuple(float(g) for g in rng.uniform(*config.white_balance, 3))
    if rng.random() < config.brightness_rate:
        params["brightness"] = float(rng.uniform(*config.brightness))
    if rng.random() < config.gamma_rate:
        params["gamma"] = float(np.exp(rng.uniform(*np.log(config.gamma))))
    if rng.random() < config.blur_rate:
        params["blur_sigma"] = float(rng.uniform(*config.blur_sigma))
    if rng.random() < config.motion_blur_rate:
        length = float(rng.uniform(*config.motion_blur_length))
        params["motion_blur"] = (length, float(rng.uniform(0, np.pi)))
    if rng.random() < config.rescale_rate:
        params["rescale"] = float(rng.uniform(*config.rescale))
    if rng.random() < config.noise_rate:
        params["noise_sigma"] = float(rng.uniform(*config.noise_sigma))
    if rng.random() < config.jpeg_rate:
        params["jpeg_quality"] = round(rng.uniform(*config.jpeg_quality))
    return CameraParams(**params)


def apply_camera(image: np.ndarray, params: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 or float 0..255 -> uint8 through the degraded camera: light (white
    balance, brightness, gamma), optics (blur, motion blur, a coarser sensor), then noise and
    JPEG. ``rng`` draws only the noise, so frames of a clip can share ``params``."""
    out = np.asarray(image, dtype=np.float32)
    if params.white_balance != (1.0, 1.0, 1.0) or params.brightness != 1.0:
        out = out * (np.asarray(params.white_balance, np.float32) * np.float32(params.brightness))
    if params.gamma != 1.0:
        out = np.float32(255) * (np.clip(out, 0, 255) / np.float32(255)) ** np.float32(params.gamma)
    if params.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma)
    if params.motion_blur[0] >= 1.5:
        out = cv2.filter2D(out, -1, motion_kernel(*params.motion_blur))
    if params.rescale < 1.0:
        height, width = out.shape[:2]
        small = (max(8, round(width * params.rescale)), max(8, round(height * params.rescale)))
        out = cv2.resize(out, small, interpolation=cv2.INTER_AREA)
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR)
    if params.noise_sigma > 0:
        out = out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(
            params.noise_sigma
        )
    result = np.clip(out + np.float32(0.5), 0, 255).astype(np.uint8)
    if params.jpeg_quality > 0:
        ok, data = cv2.imencode(
            ".jpg", result[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality]
        )
        if ok:
            result = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    return result


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels at ``angle`` radians."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    centre = (size - 1) / 2
    dx, dy = np.cos(angle) * (length - 1) / 2, np.sin(angle) * (length - 1) / 2
    start = (round((centre - dx) * 16), round((centre - dy) * 16))
    end = (round((centre + dx) * 16), round((centre + dy) * 16))
    cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA, 4)
    total = float(kernel.sum())
    if total <= 0:
        kernel[size // 2, size // 2] = 1.0
        total = 1.0
    return kernel / np.float32(total)


def crop_box(
    rng: np.random.Generator, hw: tuple[int, int], aspect: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1): the largest box of ``aspect`` (height, width) inside ``hw``, placed
    at random."""
    height, width = hw
    ratio = aspect[0] / aspect[1]
    crop_h, crop_w = (
        (height, round(height / ratio))
        if height / width < ratio
        else (
            round(width * ratio),
            width,
        )
    )
    crop_h, crop_w = max(8, min(crop_h, height)), max(8, min(crop_w, width))
    y0 = int(rng.integers(0, height - crop_h + 1))
    x0 = int(rng.integers(0, width - crop_w + 1))
    return y0, x0, y0 + crop_h, x0 + crop_w


@dataclass(frozen=True, eq=False)
class Augmented:
    """image: (h, w, 3) uint8; masks: the input masks cut like the image; recoloured: indices
    of masks whose fill was replaced by a photo (their colour is no longer what it was);
    crop: (y0, x0, y1, x1) of the input that was kept."""

    image: np.ndarray
    masks: list[np.ndarray]
    recoloured: tuple[int, ...]
    crop: tuple[int, int, int, int]


@dataclass(eq=False)
class _Plan:
    stuff: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    things: dict[int, tuple[np.ndarray, float, bool]] = field(default_factory=dict)
    crop: tuple[int, int, int, int] | None = None
    camera: CameraParams | None = None


class Augmenter:
    """Seeded augmentation: every random choice comes from the ``rng`` passed to a call.

    Args:
        config: what to do and how strongly.
        photos: the photos to texture with (default: ``PhotoBank.load(config.photo_set)``, read
            on first use, only when a photo chance is above zero).
    """

    def __init__(self, config: AugmentConfig = AugmentConfig(), photos: PhotoBank | None = None):
        self.config = config
        self._photos = photos

    @property
    def photos(self) -> PhotoBank:
        if self._photos is None:
            self._photos = PhotoBank.load(self.config.photo_set)
        return self._photos

    # ------------------------------------------------------------------ public
    def __call__(
        self,
        image: np.ndarray,
        masks: Sequence[np.ndarray] | None = None,
        *,
        rng: np.random.Generator,
        is_thing: Sequence[bool] | None = None,
    ) -> Augmented:
        """Augment one image and, if given, its (H, W) bool masks (things unless ``is_thing``
        says otherwise). Without masks (unlabelled frames) no photo texture is applied."""
        masks = [np.asarray(m, dtype=bool) for m in (masks or ())]
        flags = [True] * len(masks) if is_thing is None else [bool(t) for t in is_thing]
        if len(flags) != len(masks):
            raise ValueError(f"is_thing has {len(flags)} entries for {len(masks)} masks")
        if any(m.shape != image.shape[:2] for m in masks):
            raise ValueError("every mask must have the image's height and width")
        plan = self._draw(rng, image.shape[:2], list(enumerate(flags)))
        out = self._paint(plan, image, dict(enumerate(masks)), rng)
        y0, x0, y1, x1 = plan.crop or (0, 0, *image.shape[:2])
        recoloured = tuple(sorted(k for k, (_, _, fill) in plan.things.items() if fill))
        return Augmented(out, [m[y0:y1, x0:x1] for m in masks], recoloured, (y0, x0, y1, x1))

    def scenes(
        self,
        frames: Sequence[Scene],
        rng: np.random.Generator,
        *,
        crop: bool | tuple[int, int] = True,
        fills: bool = True,
    ) -> list[Scene]:
        """Augment frames of one world (a still scene, or frames of a clip) with ONE draw of
        photos, crop and camera (noise drawn per frame); ground truth is cut to the crop,
        segments that leave it are dropped, phrases are rebuilt for what is left, minus those
        naming the colour of a thing filled with a photo. ``crop=False`` keeps the frame whole
        (pixel coordinates stay valid), an (height, width) aspect crops to it whatever the
        draw (a training batch gives all its frames one shape); ``fills=False`` tints things
        instead of filling them (every colour name stays true)."""
        if not frames:
            return []
        hw = frames[0].hw
        keys = {s.id: s.is_thing for frame in frames for s in frame.segments}
        plan = self._draw(rng, hw, sorted(keys.items()))
        if crop is False:
            plan.crop = None
        elif isinstance(crop, tuple):
            plan.crop = crop_box(rng, hw, crop)
        if not fills:
            plan.things = {
                key: (layer, float(np.clip(strength, *self.config.photo_thing_tint)), False)
                for key, (layer, strength, _) in plan.things.items()
            }
        return [self._augment_scene(frame, plan, rng) for frame in frames]

    def draw_aspect(self, rng: np.random.Generator) -> tuple[int, int] | None:
        """A non-square (height, width) aspect at the config's rate, else None: one draw for
        frames that must share a shape (a training batch's)."""
        config = self.config
        if config.aspects and rng.random() < config.aspect_rate:
            return config.aspects[int(rng.integers(len(config.aspects)))]
        return None

    # ------------------------------------------------------------------ internals
    def _draw(
        self, rng: np.random.Generator, hw: tuple[int, int], keys: list[tuple[int, bool]]
    ) -> _Plan:
        config = self.config
        plan = _Plan()
        for key, is_thing in keys:
            if not is_thing and rng.random() < config.photo_stuff_rate:
                plan.stuff[key] = (
                    self.photos.texture(rng, hw),
                    float(rng.uniform(*config.photo_stuff_alpha)),
                )
            elif is_thing and rng.random() < config.photo_thing_rate:
                fill = bool(rng.random() < config.photo_thing_fill_share)
                strength = (
                    float(rng.uniform(0.85, 1.0))
                    if fill
                    else float(rng.uniform(*config.photo_thing_tint))
                )
                plan.things[key] = (self.photos.texture(rng, hw), strength, fill)
        aspect = self.draw_aspect(rng)
        if aspect is not None:
            plan.crop = crop_box(rng, hw, aspect)
        if rng.random() < config.camera_rate:
            plan.camera = sample_camera(rng, config)
        return plan

    def _paint(
        self,
        plan: _Plan,
        image: np.ndarray,
        masks: dict[int, np.ndarray],
        rng: np.random.Generator,
    ) -> np.ndarray:
        out = np.asarray(image)
        if plan.stuff or plan.things:
            out = out.astype(np.float32)
            for key, (layer, alpha) in plan.stuff.items():
                if key in masks:
                    blend_region(out, masks[key], layer, alpha)
            for key, (layer, strength, fill) in plan.things.items():
                if key not in masks:
                    continue
                if fill:
                    blend_region(out, masks[key], layer, strength)
                else:
                    shade_region(out, masks[key], layer, strength)
        if plan.crop is not None:
            y0, x0, y1, x1 = plan.crop
            out = out[y0:y1, x0:x1]
        if plan.camera is not None and not plan.camera.is_neutral:
            return apply_camera(out, plan.camera, rng)
        if out.dtype != np.uint8:
            out = np.clip(out + np.float32(0.5), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out)

    def _augment_scene(self, scene: Scene, plan: _Plan, rng: np.random.Generator) -> Scene:
        image = self._paint(plan, scene.image, {s.id: s.mask for s in scene.segments}, rng)
        recoloured = {
            s.colour for s in scene.thing_segments if s.id in plan.things and plan.things[s.id][2]
        }
        if plan.crop is None:
            segments, phrases = scene.segments, scene.phrases
            segment_ids = scene.segment_ids
        else:
            y0, x0, y1, x1 = plan.crop
            segment_ids = np.ascontiguousarray(scene.segment_ids[y0:y1, x0:x1])
            segments = [c for c in (_crop_segment(s, plan.crop) for s in scene.segments) if c]
            phrases = referring_expressions(segments, segment_ids.shape)
        if recoloured:
            pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, recoloured))) + r")\b")
            phrases = [p for p in phrases if not pattern.search(p.text)]
        return Scene(image, segment_ids, list(segments), list(phrases), scene.seed, scene.split)


def blend_region(image: np.ndarray, mask: np.ndarray, layer: np.ndarray, alpha: float) -> None:
    """image[mask] = (1 - alpha) * image + alpha * layer, in place (float32 images)."""
    a = np.float32(alpha)
    image[mask] = (1 - a) * image[mask] + a * layer[mask]


def shade_region(image: np.ndarray, mask: np.ndarray, layer: np.ndarray, strength: float) -> None:
    """Add the layer's light and shade (its luminance minus its mean over the mask), scaled by
    ``strength``, to the masked pixels: the surface looks photographed, its colour stays."""
    if not mask.any():
        return
    luminance = layer[mask].mean(axis=1)
    image[mask] += (np.float32(strength) * (luminance - luminance.mean()))[:, None]


def _crop_segment(segment: Segment, box: tuple[int, int, int, int]) -> Segment | None:
    y0, x0, y1, x1 = box
    mask = np.ascontiguousarray(segment.mask[y0:y1, x0:x1])
    area = int(np.count_nonzero(mask))
    if not area:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    amodal = None
    if segment.amodal_mask is not None:
        amodal = np.ascontiguousarray(segment.amodal_mask[y0:y1, x0:x1])
    return dataclasses.replace(
        segment,
        mask=mask,
        bbox=(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1),
        area=area,
        amodal_mask=amodal,
    )
