"""What segmentation returns: instances (mask, label, score, box) and an instance-ID image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .prompts import MemoryPrompt


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1), end-exclusive, of a non-empty mask; (0, 0, 0, 0) if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


@dataclass
class Instance:
    """One segmented thing.

    ``source`` is ``"generic"`` (found by class names) or ``"prompt"`` (answer to an
    ``ObjectPrompt``; then ``object_index`` is its index in the prompt set and ``memory`` is what
    to pass back as ``ObjectPrompt(memory=...)`` in the next round or frame). A prompted object
    the model did not find has an empty mask (``found`` is False, ``area`` 0); it stays in the
    list so results line up with the prompts, and its memory still carries over.
    """

    mask: np.ndarray
    label: str
    score: float
    source: str
    category_index: int | None = None
    object_index: int | None = None
    object_id: int | None = None
    track_id: int | None = None
    memory: MemoryPrompt | None = None
    box: tuple[int, int, int, int] = field(init=False)
    area: int = field(init=False)

    def __post_init__(self) -> None:
        self.box = mask_box(self.mask)
        self.area = int(self.mask.sum())

    @property
    def found(self) -> bool:
        return self.area > 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label,
            "score": round(float(self.score), 4),
            "box": list(self.box),
            "area": self.area,
            "source": self.source,
            "found": self.found,
        }
        for key in ("object_index", "object_id", "track_id"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass
class SegmentationResult:
    """All instances of one image. ``instance_ids[y, x] = k`` means pixel (x, y) shows
    ``instances[k - 1]`` (0 = nothing); prompted objects are drawn over generic ones."""

    instances: list[Instance]
    instance_ids: np.ndarray
    task: str
    classes: tuple[str, ...] = ()
    semantic: np.ndarray | None = None  # (H, W) int32 class index, for the "semantic" task

    @property
    def not_found(self) -> list[Instance]:
        """Prompted objects whose mask is empty (the model found nothing that fits)."""
        return [i for i in self.instances if i.source == "prompt" and not i.found]

    @property
    def image_hw(self) -> tuple[int, int]:
        return (int(self.instance_ids.shape[0]), int(self.instance_ids.shape[1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "image_size": {"height": self.image_hw[0], "width": self.image_hw[1]},
            "classes": list(self.classes),
            "instances": [instance.to_dict() for instance in self.instances],
        }


def paint_instance_ids(instances: list[Instance], hw: tuple[int, int]) -> np.ndarray:
    """uint16 image, later instances on top of earlier ones."""
    ids = np.zeros(hw, dtype=np.uint16)
    for index, instance in enumerate(instances, start=1):
        ids[instance.mask] = index
    return ids
