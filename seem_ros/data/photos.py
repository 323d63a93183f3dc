"""Real photographs as textures: the sample photos that scikit-image ships in its package.

Two disjoint sets, so the benchmark's robustness variants never show a photo that training
used: ``train`` (the recipe's augmentation) and ``eval`` (``seem-ros eval --robustness``).
Only files inside the installed package are read; nothing is downloaded.

from seem_ros.data.photos import PhotoBank
bank = PhotoBank.load("train")
layer = bank.texture(rng, (256, 256))  # (H, W, 3) float32 0..255, a jittered random crop
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

PHOTO_SETS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut.png",
        "coffee.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "brick.png",
        "grass.png",
        "camera.png",
        "coins.png",
        "page.png",
        "clock_motion.png",
    ),
    "eval": (
        "chelsea.png",
        "gravel.png",
        "moon.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "retina.jpg",
    ),
}
"""File names in scikit-image's ``data`` folder; the sets share no photo (``motorcycle_right``,
a near-copy of ``motorcycle_left``, is in neither)."""


class PhotosUnavailableError(RuntimeError):
    """scikit-image (whose package holds the photos) is not installed."""


def photo_folder() -> Path:
    """scikit-image's data folder, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise PhotosUnavailableError(
            "real-photo textures need scikit-image's sample photos: pip install scikit-image "
            "(part of the train, eval and dev extras)"
        )
    return Path(spec.origin).parent / "data"


@cache
def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    rgb.setflags(write=False)
    return rgb


@dataclass(frozen=True, eq=False)
class PhotoBank:
    """A fixed list of RGB uint8 photos (grey ones as three equal channels)."""

    photos: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.photos:
            raise ValueError("a photo bank needs at least one photo")

    @classmethod
    def load(cls, which: str = "train") -> PhotoBank:
        if which not in PHOTO_SETS:
            raise ValueError(f"unknown photo set {which!r}; expected one of {tuple(PHOTO_SETS)}")
        folder = photo_folder()
        missing = [name for name in PHOTO_SETS[which] if not (folder / name).is_file()]
        if missing:
            raise PhotosUnavailableError(f"scikit-image's package lacks the photos {missing}")
        return cls(tuple(_read(folder / name) for name in PHOTO_SETS[which]))

    def texture(
        self, rng: np.random.Generator, hw: tuple[int, int], *, jitter: bool = True
    ) -> np.ndarray:
        """(H, W, 3) float32 0..255: a random crop of a random photo at a random scale (from
        a quarter of the photo's short side up to all of it), resized to ``hw``, flipped at
        random and colour-jittered (per-channel gain, saturation, brightness; grey photos get
        a random tint)."""
        photo = self.photos[int(rng.integers(len(self.photos)))]
        height, width = hw
        ph, pw = photo.shape[:2]
        aspect = width / height
        side = rng.uniform(0.25, 1.0) * min(ph, pw)
        crop_h = int(np.clip(side / np.sqrt(max(aspect, 1e-6)), 8, ph))
        crop_w = int(np.clip(crop_h * aspect, 8, pw))
        y0 = int(rng.integers(0, ph - crop_h + 1))
        x0 = int(rng.integers(0, pw - crop_w + 1))
        crop = photo[y0 : y0 + crop_h, x0 : x0 + crop_w]
        interpolation = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
        layer = cv2.resize(crop, (width, height), interpolation=interpolation).astype(np.float32)
        if rng.random() < 0.5:
            layer = layer[:, ::-1]
        if rng.random() < 0.5:
            layer = layer[::-1]
        layer = np.ascontiguousarray(layer)
        if jitter:
            layer = colour_jitter(layer, rng)
        return layer


def colour_jitter(layer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random saturation, per-channel gain and brightness of a float RGB layer (in place when
    possible); grey layers get a random tint first."""
    grey = layer.mean(axis=2, keepdims=True)
    if float(np.abs(layer - grey).max()) < 1.0:
        layer = grey * rng.uniform(0.6, 1.3, size=3).astype(np.float32)
        grey = layer.mean(axis=2, keepdims=True)
    saturation = np.float32(rng.uniform(0.4, 1.4))
    layer = grey + saturation * (layer - grey)
    layer *= rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    layer += np.float32(rng.uniform(-25, 25))
    return np.clip(layer, 0, 255, out=layer)
