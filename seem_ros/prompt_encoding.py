"""From validated prompts to the decoder's fixed-shape tensors (numpy, no model needed).

Each visual prompt becomes ``S`` sample locations on the model input (in [0, 1]):

* point: the click itself (one valid sample);
* box: a regular grid inside the box;
* scribble: points evenly spaced along the polyline by arc length;
* mask / reference region: farthest-point samples inside the mask, starting from its most
  interior pixel, so a few samples cover the whole region.

When an object has more visual prompts than slots, boxes, masks and scribbles are kept, then the
first positive click (the one that said *which* object; without it a long run of corrections,
mostly negative, would lose the object), and the most recent clicks fill the remaining slots (the
previous mask carries the ones in between).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .model.prompt_tensors import KIND_INDEX, PromptTensors, empty_prompt_tensors
from .prompts import ObjectPrompt, PromptError, ReferenceRegion
from .transforms import ResizeTransform

if TYPE_CHECKING:
    from .model.config import ModelConfig
    from .model.seem import SEEM

MASK_STRIDE = 4
"""Input pixels per mask-feature pixel, in both model families."""


@dataclass(frozen=True)
class PromptLayout:
    """Sizes of the decoder's prompt inputs (from the model config)."""

    slots: int
    samples: int
    memory_tokens: int
    dim: int
    embed_dim: int
    mask_stride: int  # input pixels per cell of the mask-feature grid

    @classmethod
    def of(cls, model: SEEM) -> PromptLayout:
        return cls.from_config(model.config, mask_stride=model.mask_stride)

    @classmethod
    def from_config(cls, config: ModelConfig, *, mask_stride: int = MASK_STRIDE) -> PromptLayout:
        """The layout of a model config (what an export's model card carries)."""
        return cls(
            slots=config.decoder.max_visual_prompts,
            samples=config.decoder.samples_per_prompt,
            memory_tokens=config.decoder.memory_tokens,
            dim=config.decoder.hidden_dim,
            embed_dim=config.text.embed_dim,
            mask_stride=mask_stride,
        )

    def mask_hw(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        """(rows, cols) of the mask-feature grid of a model input of ``input_hw``."""
        return (input_hw[0] // self.mask_stride, input_hw[1] // self.mask_stride)

    def empty(
        self, *, groups: int, input_hw: tuple[int, int], slots: int | None = None
    ) -> PromptTensors[np.ndarray]:
        """All-padding prompt tensors (B = 1) for ``groups`` objects of ``slots`` visual slots
        (default: the model's maximum) on an input of ``input_hw``."""
        return empty_prompt_tensors(
            batch=1,
            groups=groups,
            slots=self.slots if slots is None else slots,
            samples=self.samples,
            memory_tokens=self.memory_tokens,
            dim=self.dim,
            embed_dim=self.embed_dim,
            mask_hw=self.mask_hw(input_hw),
        )


@dataclass(frozen=True)
class VisualSlot:
    coords: np.ndarray  # (S, 2) unit coordinates
    valid: np.ndarray  # (S,) float
    kind: str
    positive: bool


def point_samples(xy_unit: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.repeat(np.asarray(xy_unit, dtype=np.float32).reshape(1, 2), samples, axis=0)
    valid = np.zeros(samples, dtype=np.float32)
    valid[0] = 1.0
    return coords, valid


def box_samples(
    x0: float, y0: float, x1: float, y1: float, samples: int
) -> tuple[np.ndarray, np.ndarray]:
    side = int(np.ceil(np.sqrt(samples)))
    fractions = (np.arange(side) + 0.5) / side
    xs = x0 + (x1 - x0) * fractions
    ys = y0 + (y1 - y0) * fractions
    grid = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).reshape(-1, 2)[:samples]
    return grid.astype(np.float32), np.ones(len(grid), dtype=np.float32)


def polyline_samples(xy_unit: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(xy_unit, dtype=np.float64)
    if len(points) == 1:
        return point_samples(points[0], samples)
    segment = np.linalg.norm(np.diff(points, axis=0), axis=1)
    distance = np.concatenate([[0.0], np.cumsum(segment)])
    if distance[-1] <= 0:
        return point_samples(points[0], samples)
    targets = np.linspace(0.0, distance[-1], samples)
    xs = np.interp(targets, distance, points[:, 0])
    ys = np.interp(targets, distance, points[:, 1])
    return np.stack([xs, ys], axis=1).astype(np.float32), np.ones(samples, dtype=np.float32)


def mask_samples(coverage: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) float coverage of the model-input grid -> farthest-point samples inside it,
    as unit (x, y)."""
    binary = coverage >= 0.5
    if not binary.any():
        binary = coverage >= coverage.max() * 0.5 if coverage.max() > 0 else binary
    if not binary.any():
        raise PromptError("mask prompt is too small to be seen at the model's resolution")
    grid = np.array([coverage.shape[1], coverage.shape[0]], dtype=np.float64)  # (x, y) cells
    depth = cv2.distanceTransform(np.pad(binary, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    ys, xs = np.nonzero(binary)
    candidates = np.stack([xs, ys], axis=1).astype(np.float64)
    chosen = [int(np.argmax(depth[ys, xs]))]
    nearest = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)
    while len(chosen) < min(samples, len(candidates)):
        index = int(np.argmax(nearest))
        if nearest[index] <= 0:
            break
        chosen.append(index)
        nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[index], axis=1))
    picked = (candidates[chosen] + 0.5) / grid
    coords = np.zeros((samples, 2), dtype=np.float32)
    valid = np.zeros(samples, dtype=np.float32)
    coords[: len(picked)] = picked
    coords[len(picked) :] = picked[0]
    valid[: len(picked)] = 1.0
    return coords, valid


def visual_slots(
    obj: ObjectPrompt, transform: ResizeTransform, layout: PromptLayout, limit: int | None = None
) -> list[VisualSlot]:
    """The object's visual prompts as sample sets, newest clicks last, at most ``limit``
    (default: the model's maximum): boxes, masks and scribbles first, then the newest clicks."""
    s = layout.samples
    fixed: list[VisualSlot] = []
    if obj.box is not None:
        (x0, y0), (x1, y1) = transform.points_to_unit(
            np.array([[obj.box.x0, obj.box.y0], [obj.box.x1, obj.box.y1]])
        )
        fixed.append(VisualSlot(*box_samples(x0, y0, x1, y1, s), "box", True))
    if obj.mask is not None:
        coverage = transform.mask_to_grid(obj.mask.mask, layout.mask_hw(transform.input_hw))
        fixed.append(VisualSlot(*mask_samples(coverage, s), "mask", True))
    for scribble in obj.scribbles:
        coords = transform.points_to_unit(scribble.coords)
        fixed.append(VisualSlot(*polyline_samples(coords, s), "scribble", scribble.positive))
    clicks: list[VisualSlot] = []
    if obj.points is not None:
        units = transform.points_to_unit(obj.points.coords)
        for xy, label in zip(units, obj.points.labels):
            clicks.append(VisualSlot(*point_samples(xy, s), "point", bool(label)))
    limit = layout.slots if limit is None else min(limit, layout.slots)
    fixed = fixed[:limit]
    room = limit - len(fixed)
    if len(clicks) > room > 1:
        anchor = next((i for i, c in enumerate(clicks) if c.positive), None)
        if anchor is not None and anchor < len(clicks) - (room - 1):
            return [*fixed, clicks[anchor], *clicks[-(room - 1) :]]
    return fixed + (clicks[-room:] if room > 0 else [])


def reference_samples(
    region: ReferenceRegion, transform: ResizeTransform, layout: PromptLayout
) -> tuple[np.ndarray, np.ndarray]:
    """The sample set of a region of another image, in the unit coordinates of that image's
    model input (``transform``, as its frame would be)."""
    coverage = transform.mask_to_grid(region.mask, layout.mask_hw(transform.input_hw))
    return mask_samples(coverage, layout.samples)


TextEmbedder = Callable[[str], np.ndarray]
ReferenceEmbedder = Callable[[ReferenceRegion], np.ndarray]


def build_prompt_tensors(
    objects: Sequence[ObjectPrompt],
    transform: ResizeTransform,
    layout: PromptLayout,
    *,
    embed_text: TextEmbedder,
    embed_reference: ReferenceEmbedder,
    groups: int | None = None,
    slots: int | None = None,
    max_slots: int | None = None,
) -> PromptTensors[np.ndarray]:
    """Pack ``objects`` (one group each) into padded tensors for one image (B = 1).

    Args:
        groups: pad to this many groups (default: ``max(1, len(objects))``).
        slots: visual-prompt slots per group: ``None`` = the maximum (fixed-shape graphs),
            ``0`` = as many as the objects need (cheapest; the weights do not depend on it), or
            a number.
        max_slots: the most slots the engine takes (fixed-shape graphs); objects with more
            prompts keep their boxes, masks and scribbles and their newest clicks.
        embed_text: phrase -> (E,) unit embedding; embed_reference: region -> (D,) token.
    """
    count = groups if groups is not None else max(1, len(objects))
    cap = layout.slots if max_slots is None else min(max_slots, layout.slots)
    if slots is not None and slots > 0:
        cap = min(cap, slots)
    object_slots = [visual_slots(obj, transform, layout, cap) for obj in objects]
    if slots == 0:  # as few slots as these objects need: decoding cost grows with slots
        slots = max([1] + [len(s) for s in object_slots])
    slots = cap if slots is None else slots
    if not 1 <= slots <= layout.slots:
        raise PromptError(f"visual slots must be in 1..{layout.slots}, got {slots}")
    if len(objects) > count:
        raise PromptError(f"{len(objects)} prompted objects but room for {count}")
    tensors = layout.empty(groups=count, input_hw=transform.input_hw, slots=slots)
    for g, obj in enumerate(objects):
        tensors.group_valid[0, g] = 1.0
        for p, slot in enumerate(object_slots[g]):
            tensors.visual_coords[0, g, p] = slot.coords
            tensors.visual_sample_valid[0, g, p] = slot.valid
            tensors.visual_kind[0, g, p, KIND_INDEX[slot.kind]] = 1.0
            tensors.visual_positive[0, g, p] = float(slot.positive)
            tensors.visual_valid[0, g, p] = 1.0
        if obj.text is not None:
            tensors.text_embed[0, g] = embed_text(obj.text.text)
            tensors.text_valid[0, g] = 1.0
        if obj.reference is not None:
            tensors.ref_token[0, g] = embed_reference(obj.reference)
            tensors.ref_valid[0, g] = 1.0
        if obj.memory is not None:
            memory_mask = obj.memory.mask
            if memory_mask.shape != (transform.height, transform.width):
                memory_mask = cv2.resize(
                    memory_mask.astype(np.uint8),
                    (transform.width, transform.height),
                    interpolation=cv2.INTER_NEAREST,
                ).astype(bool)
            if memory_mask.any():
                tensors.prev_mask[0, g] = transform.mask_to_grid(
                    memory_mask, layout.mask_hw(transform.input_hw)
                )
                tensors.prev_mask_valid[0, g] = 1.0
            if obj.memory.tokens is not None:
                expected = (layout.memory_tokens, layout.dim)
                if obj.memory.tokens.shape != expected:
                    raise PromptError(
                        f"MemoryPrompt: tokens {obj.memory.tokens.shape} do not fit "
                        f"this model {expected}"
                    )
                tensors.prev_memory[0, g] = obj.memory.tokens
                tensors.prev_memory_valid[0, g] = 1.0
    return tensors
