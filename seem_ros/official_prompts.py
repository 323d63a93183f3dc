"""From validated prompts to the official SEEM decoder's tensors (numpy; no model needed
except the phrase embedder passed in).

The official code turns every visual prompt into a binary mask on the padded model input and
samples its pixels. The rules, fixed here where the official code draws at random:

* a click is its pixel dilated 3x3 (the official 3x3 ``dilation_kernel``); the pixel is the
  input pixel under the click, ``floor(x * scale)`` (pixel centres are at +0.5, so both
  ``(10, 20)`` and ``(10.5, 20.5)`` click input pixel column 10, row 20 at scale 1);
* a scribble is the pixels of a 1-pixel polyline (OpenCV ``LINE_8``) through its points;
* a box is its filled rectangle and a mask prompt its mask, both resized to the input and
  kept where coverage >= 0.5 (the official demo draws boxes as strokes and never uses them
  as boxes; SEEM v1 was trained with box-shaped masks among its visual prompts);
* an object's positive prompts are one mask and its negative prompts another; each gives all
  of its pixels when it has <= 512, otherwise an evenly strided 512 in raster order;
* an object with memory and no visual prompt takes its previous mask as its positive mask
  (frame-to-frame tracking; the official code has no such case);
* memory slots: with c objects carrying memory, slot i of 32 belongs to the (i * c) // 32-th;
* a region of another image (official "refimg") is its mask on that image's own padded input
  (coverage >= 0.5), its pixels chosen by the same 512 rule; the reference image is encoded
  (``embed_reference``) and the tokens sampled there replace the object's spatial tokens on
  this image (its memory still applies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .model.official.prompt_tensors import (
    OfficialPromptTensors,
    empty_official_prompt_tensors,
    memory_slot_owners,
    strided_pixels,
)
from .prompt_encoding import MASK_STRIDE
from .prompts import ObjectPrompt, PromptError, ReferenceRegion
from .transforms import ResizeTransform

if TYPE_CHECKING:
    from .model.config import ModelConfig

PhraseEmbedder = Callable[[str], tuple[np.ndarray, np.ndarray]]
"""phrase -> (token embeddings (T, E), sentence embedding (E,))."""


@dataclass(frozen=True)
class OfficialReference:
    """A region of another image as the decoder takes it (official "refimg" tokens)."""

    tokens: np.ndarray  # (3, n, D) per level 1/32, 1/16, 1/8, positive indicator included
    positive_mean: np.ndarray  # (C,) mean mask feature under the region's pixels


ReferenceEmbedder = Callable[[ReferenceRegion], OfficialReference]


@dataclass(frozen=True)
class OfficialLayout:
    """Sizes of the official decoder's prompt inputs (from the model config)."""

    max_pixels: int  # prompt pixels per polarity (official MAX_SPATIAL_LEN)
    memory_slots: int
    embed_dim: int
    mask_stride: int
    hidden_dim: int | None = None  # D of the spatial tokens (default embed_dim)
    mask_dim: int | None = None  # C of the mask features (default embed_dim)

    @classmethod
    def of(cls, model) -> OfficialLayout:
        return cls.from_config(model.config, mask_stride=model.mask_stride)

    @classmethod
    def from_config(cls, config: ModelConfig, *, mask_stride: int = MASK_STRIDE) -> OfficialLayout:
        """The layout of an official model config (what an export's model card carries)."""
        spec = config.official
        return cls(
            max_pixels=spec.max_spatial_len,
            memory_slots=spec.spatial_memories,
            embed_dim=spec.dim_proj,
            mask_stride=mask_stride,
            hidden_dim=spec.hidden_dim,
            mask_dim=spec.mask_dim,
        )

    def mask_hw(self, transform: ResizeTransform) -> tuple[int, int]:
        input_h, input_w = transform.input_hw
        return input_h // self.mask_stride, input_w // self.mask_stride


def click_pixel(transform: ResizeTransform, xy: np.ndarray) -> tuple[int, int]:
    """Original-image point (the top-left pixel's centre is (0.5, 0.5)) -> (row, col) of the
    input pixel under it: ``floor(x * scale)``; a whole-number click lands on that pixel."""
    x, y = np.floor(np.asarray(xy, dtype=np.float64) * transform.scale).astype(int)
    height, width = transform.resized_hw
    return int(np.clip(y, 0, height - 1)), int(np.clip(x, 0, width - 1))


def prompt_masks(obj: ObjectPrompt, transform: ResizeTransform) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) bool masks of the object's visual prompts on the padded input."""
    shape = transform.input_hw
    positive = np.zeros(shape, dtype=np.uint8)
    negative = np.zeros(shape, dtype=np.uint8)
    if obj.points is not None:
        for xy, label in zip(obj.points.coords, obj.points.labels):
            row, col = click_pixel(transform, xy)
            target = positive if label else negative
            target[max(0, row - 1) : row + 2, max(0, col - 1) : col + 2] = 1
    for scribble in obj.scribbles:
        pixels = np.array([click_pixel(transform, xy)[::-1] for xy in scribble.coords])
        target = positive if scribble.positive else negative
        cv2.polylines(target, [pixels.astype(np.int32)], False, 1, 1, cv2.LINE_8)
    if obj.box is not None:
        box = obj.box
        rows = np.arange(transform.height)[:, None] + 0.5
        cols = np.arange(transform.width)[None, :] + 0.5
        filled = (rows >= box.y0) & (rows <= box.y1) & (cols >= box.x0) & (cols <= box.x1)
        positive |= _on_input(filled, transform)
    if obj.mask is not None:
        positive |= _on_input(obj.mask.mask, transform)
    return positive.astype(bool), negative.astype(bool)


def _on_input(mask: np.ndarray, transform: ResizeTransform) -> np.ndarray:
    return (transform.mask_to_grid(mask, transform.input_hw) >= 0.5).astype(np.uint8)


def reference_pixels(
    region: ReferenceRegion, transform: ResizeTransform, layout: OfficialLayout
) -> np.ndarray:
    """(n, 2) official coordinates (x / W_in, y / H_in of the reference image's padded input)
    of a reference region's pixels: its mask on that input (coverage >= 0.5; a region too thin
    for that keeps the pixels it touches), all pixels when <= ``max_pixels``, else the evenly
    strided subset in raster order, as for a mask prompt."""
    coverage = transform.mask_to_grid(region.mask, transform.input_hw)
    mask = coverage >= 0.5
    if not mask.any():
        mask = coverage > 0.0
    pixels = strided_pixels(mask, layout.max_pixels)
    input_h, input_w = transform.input_hw
    return (pixels[:, ::-1] / np.array([input_w, input_h], dtype=np.float64)).astype(np.float32)


def memory_logits(
    obj: ObjectPrompt, transform: ResizeTransform, mask_hw: tuple[int, int]
) -> np.ndarray | None:
    """The object's previous mask as logits on the mask-feature grid, or None without memory.

    The model hands back its own logits (``MemoryPrompt.tokens``); a memory made from a mask
    alone (another segmenter, a resized frame) becomes +-1 at coverage above / below 0.5 —
    only the sign matters to the decoder's memory attention."""
    if obj.memory is None:
        return None
    tokens = obj.memory.tokens
    if tokens is not None and tokens.shape == mask_hw:
        return tokens.astype(np.float32)
    mask = obj.memory.mask
    if not mask.any():
        return None
    if mask.shape != (transform.height, transform.width):
        mask = cv2.resize(
            mask.astype(np.uint8), (transform.width, transform.height), cv2.INTER_NEAREST
        ).astype(bool)
    coverage = transform.mask_to_grid(mask, mask_hw)
    return np.where(coverage >= 0.5, 1.0, -1.0).astype(np.float32)


def build_official_prompt_tensors(
    objects: Sequence[ObjectPrompt],
    transform: ResizeTransform,
    layout: OfficialLayout,
    *,
    embed_phrase: PhraseEmbedder,
    embed_reference: ReferenceEmbedder | None = None,
    groups: int | None = None,
) -> OfficialPromptTensors[np.ndarray]:
    """Pack ``objects`` (one group each, B = 1). Sizes shrink to what the objects need: S is the
    most prompt pixels of any object and polarity, L the longest phrase, S_r the most pixels
    of a reference region (0 = no branch). Reference regions need ``embed_reference``."""
    count = groups if groups is not None else len(objects)
    if len(objects) > count:
        raise PromptError(f"{len(objects)} prompted objects but room for {count}")
    mask_hw = layout.mask_hw(transform)
    input_h, input_w = transform.input_hw
    pixel_sets: list[tuple[np.ndarray, np.ndarray]] = []
    memories: list[np.ndarray | None] = []
    phrases: list[tuple[np.ndarray, np.ndarray] | None] = []
    references: list[OfficialReference | None] = []
    for obj in objects:
        reference = None
        if obj.reference is not None:
            if embed_reference is None:
                raise PromptError(
                    "reference regions of another image need a reference embedder here; "
                    "use a click, box, scribble or mask on this image"
                )
            if obj.has_visual:
                raise PromptError(
                    "a reference region replaces the object's visual prompts with the official "
                    "SEEM models: give either the reference or clicks/box/scribble/mask"
                )
            reference = embed_reference(obj.reference)
        references.append(reference)
        memory = memory_logits(obj, transform, mask_hw)
        positive, negative = prompt_masks(obj, transform)
        if reference is None and memory is not None and not positive.any() and not negative.any():
            positive = _on_input(obj.memory.mask, transform).astype(bool)
        pixel_sets.append(
            (
                strided_pixels(positive, layout.max_pixels),
                strided_pixels(negative, layout.max_pixels),
            )
        )
        memories.append(memory)
        phrases.append(embed_phrase(obj.text.text) if obj.text is not None else None)

    samples = max([0] + [len(p) for pair in pixel_sets for p in pair])
    if samples == 0 and any(m is not None or r is not None for m, r in zip(memories, references)):
        samples = 1
    reference_samples = max([0] + [r.tokens.shape[1] for r in references if r is not None])
    if any(r is not None for r in references):
        reference_samples = max(reference_samples, 1)
    length = max([0] + [len(p[0]) for p in phrases if p is not None])
    tensors = empty_official_prompt_tensors(
        groups=count,
        samples=samples,
        text_length=length,
        embed_dim=layout.embed_dim,
        memory_slots=layout.memory_slots,
        mask_hw=mask_hw,
        reference_samples=reference_samples,
        hidden_dim=layout.hidden_dim,
        mask_dim=layout.mask_dim,
    )
    scale = np.array([input_w, input_h], dtype=np.float64)
    with_memory = [g for g, memory in enumerate(memories) if memory is not None]
    owners = memory_slot_owners(layout.memory_slots, len(with_memory))
    for g in range(len(objects)):
        tensors.group_valid[0, g] = 1.0
        for polarity, pixels in enumerate(pixel_sets[g]):
            n = len(pixels)
            # official coordinates: pixel index / padded input size, (x, y)
            tensors.spatial_coords[0, g, polarity, :n] = pixels[:, ::-1] / scale
            tensors.spatial_valid[0, g, polarity, :n] = 1.0
        if memories[g] is not None:
            tensors.prev_mask[0, g] = memories[g]
            tensors.memory_slots[0, g] = owners == with_memory.index(g)
        if phrases[g] is not None:
            tokens, sentence = phrases[g]
            tensors.text_tokens[0, g, : len(tokens)] = tokens
            tensors.text_token_valid[0, g, : len(tokens)] = 1.0
            tensors.text_embed[0, g] = sentence
            tensors.text_valid[0, g] = 1.0
        if references[g] is not None:
            reference = references[g]
            n = reference.tokens.shape[1]
            tensors.ref_tokens[0, g, :, :n] = reference.tokens
            tensors.ref_token_valid[0, g, :n] = 1.0
            tensors.ref_positive_mean[0, g] = reference.positive_mean
            tensors.ref_valid[0, g] = 1.0
    return tensors
