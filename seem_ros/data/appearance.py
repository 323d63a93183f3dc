"""How a thing looks: its colour, shading gradient and optional surface texture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seem_ros.data.shapes import Pose
from seem_ros.data.textures import Texture, random_texture
from seem_ros.data.vocabulary import COLOURS

TEXTURE_PROBABILITY = 0.4
_COLOUR_JITTER = 12.0
_TEXTURE_AMPLITUDE = (18.0, 32.0)
_SHADING_STRENGTH = (0.08, 0.25)


@dataclass(frozen=True, eq=False)
class ThingAppearance:
    """Colour field of one object, defined in the object's own rotating frame.

    rgb: base colour (the named colour with a little jitter), float 0..255.
    shading_strength: brightness change from the centre to the rim along the light.
    shading_angle: direction the light comes from, relative to the object, radians.
    texture: surface pattern, or None for a plain object.
    """

    rgb: np.ndarray
    shading_strength: float
    shading_angle: float
    texture: Texture | None

    def colour_field(self, pose: Pose, bbox: tuple[int, int, int, int]) -> np.ndarray:
        """RGB float32 (y1 - y0, x1 - x0, 3) for the pixels of `bbox` = (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = bbox
        cos, sin = np.float32(np.cos(pose.angle)), np.float32(np.sin(pose.angle))
        inv_r = np.float32(1.0 / pose.radius)
        dx = ((np.arange(x0, x1, dtype=np.float32) - np.float32(pose.x)) * inv_r)[None, :]
        dy = ((np.arange(y0, y1, dtype=np.float32) - np.float32(pose.y)) * inv_r)[:, None]
        u, v = dx * cos + dy * sin, dy * cos - dx * sin
        light = np.float32(self.shading_strength)
        shade = np.float32(1) + light * (
            u * np.float32(np.cos(self.shading_angle)) + v * np.float32(np.sin(self.shading_angle))
        )
        field = shade[..., None] * self.rgb.astype(np.float32)
        if self.texture is not None:
            field += self.texture.offsets(u, v)[..., None]
        return field


def sample_appearance(rng: np.random.Generator, colour: str) -> ThingAppearance:
    """A random look for an object of the named colour."""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {tuple(COLOURS)}")
    jitter = rng.uniform(-_COLOUR_JITTER, _COLOUR_JITTER, size=3)
    rgb = np.clip(np.asarray(COLOURS[colour], dtype=np.float64) + jitter, 0, 255)
    texture = None
    if rng.random() < TEXTURE_PROBABILITY:
        texture = random_texture(rng, float(rng.uniform(*_TEXTURE_AMPLITUDE)))
    return ThingAppearance(
        rgb=rgb.astype(np.float32),
        shading_strength=float(rng.uniform(*_SHADING_STRENGTH)),
        shading_angle=float(rng.uniform(0, 2 * np.pi)),
        texture=texture,
    )
