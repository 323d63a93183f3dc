"""Coloured overlays with labels: what a person looks at to judge a result."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from .results import SegmentationResult


def palette(count: int, *, seed_offset: int = 0) -> np.ndarray:
    """``count`` distinct, bright RGB colours (golden-ratio hue steps), uint8."""
    colours = []
    for index in range(count):
        hue = ((index + seed_offset) * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return np.array(colours, dtype=np.uint8).reshape(-1, 3)


def draw_overlay(
    image: np.ndarray,
    result: SegmentationResult,
    *,
    alpha: float = 0.5,
    show_labels: bool = True,
    colour_keys: list[int] | None = None,
) -> np.ndarray:
    """RGB image with each instance tinted, outlined and labelled ``label score``.

    ``colour_keys`` (e.g. track IDs) keep an object's colour stable from frame to frame.
    """
    overlay = image.copy()
    keys = colour_keys or list(range(len(result.instances)))
    colours = palette(max(keys, default=0) + 1)
    ids = result.instance_ids
    for index in range(1, len(result.instances) + 1):
        visible = ids == index
        if not visible.any():
            continue
        colour = colours[keys[index - 1]].astype(np.float32)
        overlay[visible] = (overlay[visible] * (1 - alpha) + colour * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(
            visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(overlay, contours, -1, tuple(int(c) for c in colours[keys[index - 1]]), 1)
    if show_labels:
        for instance in result.instances:
            if instance.area == 0:
                continue
            x0, y0, _, _ = instance.box
            text = f"{instance.label} {instance.score:.2f}"
            if instance.track_id is not None:
                text = f"#{instance.track_id} {text}"
            _put_label(overlay, text, (x0, max(y0, 12)))
    return overlay


def _put_label(image: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    x, y = origin
    cv2.rectangle(image, (x, y - height - baseline), (x + width, y), (0, 0, 0), -1)
    cv2.putText(
        image, text, (x, y - baseline), font, scale, (255, 255, 255), thickness, cv2.LINE_AA
    )
