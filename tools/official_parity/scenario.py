"""The parity run's inputs, from ``scenarios.json``: the synthetic image and the prompt masks.

Shared by ``reference.py`` (official side) and ``compare.py`` (our side), so both replay exactly
the same prompts. A click is one pixel dilated 3x3 (clipped at the border), a scribble the pixels
of a 1-pixel ``cv2.polylines`` LINE_8 polyline through its points; coordinates are integer
``[x, y]`` pixels. Round-2 prompts add to round 1's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SCENARIOS = Path(__file__).resolve().parent / "scenarios.json"


def load_scenarios(path: str | Path = SCENARIOS) -> dict:
    return json.loads(Path(path).read_text())


def synth_image(seed: int, height: int = 512, width: int = 512) -> np.ndarray:
    """HxWx3 uint8 RGB: a shaded background, a red circle (left), a blue box (right), a green
    triangle and a yellow ellipse (bottom), light noise; deterministic per seed."""
    import cv2

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([90 + 60 * xs / width, 110 + 40 * ys / height, 140 - 50 * xs / width], axis=-1)
    sy, sx = height / 512, width / 512
    cv2.circle(image, (int(150 * sx), int(200 * sy)), int(70 * min(sx, sy)), (220, 40, 40), -1)
    cv2.rectangle(
        image, (int(320 * sx), int(100 * sy)), (int(480 * sx), int(290 * sy)), (40, 60, 210), -1
    )
    triangle = np.array([[60, 470], [200, 330], [260, 480]], np.float32) * [sx, sy]
    cv2.fillPoly(image, [triangle.astype(np.int32)], (50, 180, 60))
    cv2.ellipse(
        image,
        (int(390 * sx), int(420 * sy)),
        (int(80 * sx), int(40 * sy)),
        20,
        0,
        360,
        (230, 210, 40),
        -1,
    )
    image += rng.normal(0.0, 8.0, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def click_mask(height: int, width: int, x: int, y: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = True
    return mask


def scribble_mask(height: int, width: int, points) -> np.ndarray:
    import cv2

    canvas = np.zeros((height, width), np.uint8)
    pts = np.asarray(points, np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], isClosed=False, color=1, thickness=1, lineType=cv2.LINE_8)
    return canvas > 0


def round_masks(spec: dict, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) masks of ONE round's prompts."""
    pos = np.zeros((height, width), bool)
    neg = np.zeros((height, width), bool)
    for x, y, label in spec.get("clicks", []):
        (pos if label else neg)[...] |= click_mask(height, width, x, y)
    for points in spec.get("scribbles", []):
        pos |= scribble_mask(height, width, points)
    for points in spec.get("negative_scribbles", []):
        neg |= scribble_mask(height, width, points)
    return pos, neg


def object_masks(obj: dict, rounds: int, height: int, width: int):
    """(positive, negative) masks after ``rounds`` rounds (accumulated)."""
    pos = np.zeros((height, width), bool)
    neg = np.zeros((height, width), bool)
    for index in range(1, rounds + 1):
        p, n = round_masks(obj.get(f"round{index}", {}), height, width)
        pos |= p
        neg |= n
    return pos, neg


def case_masks(scenarios: dict, case: dict, rounds: int, height: int, width: int):
    """(c, H, W) positive and negative mask stacks of a case's objects after ``rounds``."""
    pairs = [
        object_masks(scenarios["objects"][name], rounds, height, width) for name in case["objects"]
    ]
    return np.stack([p for p, _ in pairs]), np.stack([n for _, n in pairs])
