"""Coordinate and image transforms between the original image and the square model input.

The model sees the image resized so its longest side is ``size`` and padded at the bottom and
right to ``size x size`` (segment-anything's convention). Keeping every conversion here means no
other module does resize arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def downscale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased shrink, close to ``INTER_AREA`` at a fraction of its cost.

    OpenCV's area filter is fast for integer factors but slow for fractional ones (640x480 ->
    256x192 took ~2 ms of a ~14 ms frame). So: a bilinear step to the largest integer multiple
    of the target that the image still covers, then an integer-factor area filter, which
    averages the same footprint (mean difference ~0.15 grey levels on smooth images).
    """
    factor = int(min(image.shape[1] / width, image.shape[0] / height))
    if factor < 2:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) != (width * factor, height * factor):
        image = cv2.resize(image, (width * factor, height * factor), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class ResizeTransform:
    """Maps one original image (``height`` x ``width``) to the model input of side ``size``."""

    height: int
    width: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.height, self.width)

    @property
    def resized_hw(self) -> tuple[int, int]:
        return (
            max(1, round(self.height * self.scale)),
            max(1, round(self.width * self.scale)),
        )

    def image_to_input(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> (3, size, size) float32 0..255; padding is 0 (removed by the model's
        normalisation only approximately, which training sees the same way)."""
        new_h, new_w = self.resized_hw
        resized = (
            downscale(image, new_w, new_h)
            if self.scale < 1
            else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        )
        canvas = np.zeros((self.size, self.size, 3), dtype=np.float32)
        canvas[:new_h, :new_w] = resized
        return np.ascontiguousarray(canvas.transpose(2, 0, 1))

    def points_to_unit(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original pixels -> (..., 2) in [0, 1] of the model input."""
        return np.asarray(xy, dtype=np.float64) * self.scale / self.size

    def mask_to_grid(self, mask: np.ndarray, grid: int) -> np.ndarray:
        """Original-size mask -> (grid, grid) float coverage on the model input's grid."""
        side = grid
        new_h = max(1, round(self.resized_hw[0] * side / self.size))
        new_w = max(1, round(self.resized_hw[1] * side / self.size))
        small = cv2.resize(mask.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA)
        out = np.zeros((side, side), dtype=np.float32)
        out[:new_h, :new_w] = small
        return out

    def logits_to_image(self, logits: np.ndarray) -> np.ndarray:
        """(M, g, g) logits on the model grid -> (M, H, W) logits of the original image."""
        count, grid = logits.shape[0], logits.shape[-1]
        if count == 0:
            return np.zeros((0, self.height, self.width), dtype=np.float32)
        crop_h = max(1, round(self.resized_hw[0] * grid / self.size))
        crop_w = max(1, round(self.resized_hw[1] * grid / self.size))
        cropped = np.ascontiguousarray(
            logits[:, :crop_h, :crop_w].transpose(1, 2, 0), dtype=np.float32
        )
        out = np.empty((self.height, self.width, count), dtype=np.float32)
        # OpenCV resizes at most 512 channels at once
        for start in range(0, count, 512):
            chunk = cropped[..., start : start + 512]
            resized = cv2.resize(chunk, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            out[..., start : start + 512] = resized.reshape(self.height, self.width, -1)
        return out.transpose(2, 0, 1)
