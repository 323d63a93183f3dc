"""The benchmark's inputs: a deterministic camera frame and N clicked objects."""

from __future__ import annotations

import numpy as np

from ..model.prompt_tensors import TensorBundle
from ..official_prompts import OfficialLayout, build_official_prompt_tensors
from ..prompt_encoding import build_prompt_tensors
from ..prompts import ObjectPrompt, Points
from ..segmenter import Segmenter


def camera_frame(width: int, height: int, *, seed: int = 0) -> np.ndarray:
    """An HxWx3 uint8 frame of textured noise with a few flat rectangles (deterministic)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(60, 120, size=(height, width, 3), dtype=np.uint8)
    for _ in range(6):
        x0, y0 = rng.integers(0, width * 3 // 4), rng.integers(0, height * 3 // 4)
        x1, y1 = x0 + rng.integers(8, width // 4 + 9), y0 + rng.integers(8, height // 4 + 9)
        frame[y0:y1, x0:x1] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return frame


def clicked_objects(count: int, width: int, height: int, *, seed: int = 1) -> list[ObjectPrompt]:
    """``count`` objects, one positive click each, spread over the frame."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(0, width, count)
    ys = rng.uniform(0, height, count)
    return [ObjectPrompt(points=Points.single(float(x), float(y))) for x, y in zip(xs, ys)]


def click_tensors(
    segmenter: Segmenter, count: int, width: int, height: int
) -> TensorBundle[np.ndarray]:
    """Decoder inputs for ``count`` clicked objects on a ``width`` x ``height`` frame."""
    transform = segmenter.transform_for(height, width)
    if isinstance(segmenter.layout, OfficialLayout):
        return build_official_prompt_tensors(
            clicked_objects(count, width, height),
            transform,
            segmenter.layout,
            embed_phrase=segmenter.phrase_embedding,
        )
    return build_prompt_tensors(
        clicked_objects(count, width, height),
        transform,
        segmenter.layout,
        embed_text=lambda text: segmenter.text_embeddings([text])[0],
        embed_reference=segmenter.reference_token,
        slots=0,
        max_slots=segmenter.engine.max_slots,
    )
