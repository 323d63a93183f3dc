"""Procedural surface patterns, evaluated on coordinate grids.

Patterns are functions of coordinates rather than images, so an object's stripes turn
with the object and a backdrop's planks move with the camera. Every pattern returns
float32 values in [-1, 1]; the caller scales them into intensity offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TEXTURE_KINDS: tuple[str, ...] = ("stripes", "checker", "noise")
_NOISE_EXTENT = 1.25


@dataclass(frozen=True, eq=False)
class Texture:
    """A pattern in a shape's own frame, where u and v run over [-1, 1] across the shape.

    period: pattern wavelength in the same units as u and v.
    angle: rotation of the pattern relative to the shape, radians.
    amplitude: largest intensity offset the pattern adds, in 0..255 units.
    noise_grid: the random lattice that `noise` interpolates (unused by other kinds).
    """

    kind: str
    period: float
    angle: float
    amplitude: float
    noise_grid: np.ndarray

    def __post_init__(self) -> None:
        if self.kind not in TEXTURE_KINDS:
            raise ValueError(f"unknown texture kind {self.kind!r}; expected one of {TEXTURE_KINDS}")
        if self.period <= 0:
            raise ValueError(f"texture period must be positive, got {self.period}")

    def offsets(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Intensity offsets at the given coordinates, shape of u and v broadcast."""
        cos, sin = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
        pu, pv = u * cos + v * sin, v * cos - u * sin
        if self.kind == "stripes":
            values = stripes(pu, self.period)
        elif self.kind == "checker":
            values = checker(pu, pv, self.period)
        else:
            values = lattice_noise(pu, pv, self.noise_grid, _NOISE_EXTENT)
        return values * np.float32(self.amplitude)


def random_texture(rng: np.random.Generator, amplitude: float) -> Texture:
    """A random object texture: kind, scale and angle drawn from `rng`."""
    kind = TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
    period = float(rng.uniform(0.35, 0.7)) if kind != "noise" else 1.0
    return Texture(
        kind=kind,
        period=period,
        angle=float(rng.uniform(0, np.pi)),
        amplitude=amplitude,
        noise_grid=rng.uniform(-1, 1, size=(6, 6)).astype(np.float32),
    )


def stripes(u: np.ndarray, period: float) -> np.ndarray:
    """Soft-edged bands across u."""
    return np.tanh(np.float32(3.0) * np.sin(u * np.float32(2 * np.pi / period)))


def checker(u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """A +-1 checkerboard with squares of side period / 2."""
    w = np.float32(2 * np.pi / period)
    return np.sign(np.sin(u * w) * np.sin(v * w)).astype(np.float32)


def lattice_noise(u: np.ndarray, v: np.ndarray, grid: np.ndarray, extent: float) -> np.ndarray:
    """Smooth noise: `grid` spread over [-extent, extent]^2 and bilinearly interpolated."""
    u, v = np.broadcast_arrays(u, v)
    rows, cols = grid.shape
    scale_x = np.float32((cols - 1) / (2 * extent))
    scale_y = np.float32((rows - 1) / (2 * extent))
    map_x = np.ascontiguousarray((u + np.float32(extent)) * scale_x, dtype=np.float32)
    map_y = np.ascontiguousarray((v + np.float32(extent)) * scale_y, dtype=np.float32)
    return cv2.remap(grid, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def smooth_noise(rng: np.random.Generator, image_hw: tuple[int, int], cell: float) -> np.ndarray:
    """Axis-aligned smooth noise in [-1, 1] over a whole image, features about `cell` px wide."""
    height, width = image_hw
    grid_hw = (max(2, round(height / cell) + 1), max(2, round(width / cell) + 1))
    grid = rng.uniform(-1, 1, size=grid_hw).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def plane_coordinates(image_hw: tuple[int, int], angle: float) -> np.ndarray:
    """Pixel coordinate along direction `angle` (radians) for every pixel, (H, W) float32."""
    height, width = image_hw
    xs = np.arange(width, dtype=np.float32) * np.float32(np.cos(angle))
    ys = np.arange(height, dtype=np.float32) * np.float32(np.sin(angle))
    return ys[:, None] + xs[None, :]
