"""The official decoder's prompt inputs: fixed-shape, padded, float32 (see ``decoder.py``).

Shapes: B images, G prompted objects, S prompt pixels per polarity (512 for the official
configs), L phrase tokens (77), E joint-space width, D model width, M memory slots (32),
(H, W) mask-feature size (1/4 of the padded input), S_r pixels of a reference region (a region
of another image, official "refimg"), C mask-feature width. A size of 0 for S or L means no
object in the batch has visual prompts / a phrase, and the decoder skips that branch; a size of
0 for S_r means no object has a reference region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..prompt_tensors import ArrayT, TensorBundle


@dataclass
class OfficialPromptTensors(TensorBundle[ArrayT]):
    spatial_coords: ArrayT  # (B, G, 2, S, 2) positive / negative pixels: x / W_in, y / H_in
    spatial_valid: ArrayT  # (B, G, 2, S)
    text_tokens: ArrayT  # (B, G, L, E) the phrase's projected token embeddings
    text_token_valid: ArrayT  # (B, G, L)
    text_embed: ArrayT  # (B, G, E) the phrase's sentence embedding
    text_valid: ArrayT  # (B, G)
    prev_mask: ArrayT  # (B, G, H, W) previous mask logits (memory)
    memory_slots: ArrayT  # (B, G, M) which memory slots belong to the object
    group_valid: ArrayT  # (B, G)
    # a region of another image (official "refimg"): its spatial tokens, sampled from the
    # reference image's three spatial-token maps (+ the positive indicator), replace the
    # object's spatial tokens on this image; its mean mask feature picks the answer
    ref_tokens: ArrayT  # (B, G, 3, S_r, D) per level 1/32, 1/16, 1/8
    ref_token_valid: ArrayT  # (B, G, S_r)
    ref_positive_mean: ArrayT  # (B, G, C) mean mask feature under the region's pixels
    ref_valid: ArrayT  # (B, G) the object is prompted by a reference region


def empty_official_prompt_tensors(
    *,
    groups: int,
    samples: int,
    text_length: int,
    embed_dim: int,
    memory_slots: int,
    mask_hw: tuple[int, int],
    reference_samples: int = 0,
    hidden_dim: int | None = None,
    mask_dim: int | None = None,
) -> OfficialPromptTensors[np.ndarray]:
    """All-padding inputs (B = 1, float32 zeros) of the given sizes; builders fill them in.
    ``hidden_dim`` (D) and ``mask_dim`` (C) default to ``embed_dim`` (equal in every config)."""
    g = groups
    hidden = embed_dim if hidden_dim is None else hidden_dim
    channels = embed_dim if mask_dim is None else mask_dim
    zeros = np.zeros
    return OfficialPromptTensors(
        spatial_coords=zeros((1, g, 2, samples, 2), np.float32),
        spatial_valid=zeros((1, g, 2, samples), np.float32),
        text_tokens=zeros((1, g, text_length, embed_dim), np.float32),
        text_token_valid=zeros((1, g, text_length), np.float32),
        text_embed=zeros((1, g, embed_dim), np.float32),
        text_valid=zeros((1, g), np.float32),
        prev_mask=zeros((1, g, *mask_hw), np.float32),
        memory_slots=zeros((1, g, memory_slots), np.float32),
        group_valid=zeros((1, g), np.float32),
        ref_tokens=zeros((1, g, 3, reference_samples, hidden), np.float32),
        ref_token_valid=zeros((1, g, reference_samples), np.float32),
        ref_positive_mean=zeros((1, g, channels), np.float32),
        ref_valid=zeros((1, g), np.float32),
    )


def memory_slot_owners(num_slots: int, objects: int) -> np.ndarray:
    """(num_slots,) object index of each memory slot: slot i belongs to object (i * c) // M.

    The official code draws the owners at random (uniformly, then sorted); this is the even,
    deterministic split with the same shape: contiguous runs, equal sizes up to one slot."""
    if objects <= 0:
        return np.full(num_slots, -1, dtype=np.int64)
    return (np.arange(num_slots) * objects) // num_slots


def strided_pixels(mask: np.ndarray, limit: int) -> np.ndarray:
    """(n, 2) row, col of a prompt mask's pixels in raster order: all of them when n <= limit,
    else the evenly strided subset ``floor(i * n / limit)``, i = 0..limit-1 (the official code
    draws a random subset)."""
    rows, cols = np.nonzero(mask)
    count = len(rows)
    if count > limit:
        keep = (np.arange(limit) * count) // limit
        rows, cols = rows[keep], cols[keep]
    return np.stack([rows, cols], axis=1)
