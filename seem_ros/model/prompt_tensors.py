"""The decoder's prompt inputs as one typed bundle of fixed-shape, padded tensors.

Shapes: B images, G prompted objects ("groups"), P visual-prompt slots per object, S samples per
visual prompt, K memory tokens, D model width, E text-embedding width, (h, w) = mask-feature size.
All masks/flags are float 0/1 so the same graph runs in ONNX Runtime and TensorRT without bool I/O.

Importing this module needs no torch (the engines that run exported graphs use it without
PyTorch installed); :meth:`TensorBundle.to_torch` imports it when called.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

ArrayT = TypeVar("ArrayT")
"""``np.ndarray`` or ``torch.Tensor``."""

PROMPT_KINDS = ("point", "box", "scribble", "mask")
"""The visual prompt kinds, in the order of ``visual_kind``'s one-hot axis."""
KIND_INDEX = {name: index for index, name in enumerate(PROMPT_KINDS)}


class TensorBundle(Generic[ArrayT]):
    """Behaviour shared by the prompt-tensor dataclasses of every model family: conversion
    between numpy and torch, and access by field name (engines feed graphs by these names)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names()}

    def to_torch(self, device: torch.device | str = "cpu") -> Any:
        import torch

        return type(self)(
            **{
                k: torch.as_tensor(v, dtype=torch.float32, device=device)
                for k, v in self.as_dict().items()
            }
        )

    def to_numpy(self) -> Any:
        def convert(value: Any) -> np.ndarray:
            if hasattr(value, "detach"):  # a torch.Tensor (torch is not imported for numpy)
                return value.detach().cpu().numpy().astype(np.float32)
            return np.asarray(value, dtype=np.float32)

        return type(self)(**{k: convert(v) for k, v in self.as_dict().items()})

    @property
    def num_groups(self) -> int:
        return int(self.group_valid.shape[1])  # type: ignore[attr-defined]


@dataclass
class PromptTensors(TensorBundle[ArrayT]):
    visual_coords: ArrayT  # (B, G, P, S, 2) x, y in [0, 1] of the model input
    visual_sample_valid: ArrayT  # (B, G, P, S)
    visual_kind: ArrayT  # (B, G, P, 4) one-hot point/box/scribble/mask
    visual_positive: ArrayT  # (B, G, P)
    visual_valid: ArrayT  # (B, G, P)
    text_embed: ArrayT  # (B, G, E) unit vector of a referring phrase
    text_valid: ArrayT  # (B, G)
    ref_token: ArrayT  # (B, G, D) token of a region of another image
    ref_valid: ArrayT  # (B, G)
    prev_mask: ArrayT  # (B, G, h, w) previous mask of the object (memory)
    prev_mask_valid: ArrayT  # (B, G)
    prev_memory: ArrayT  # (B, G, K, D) memory tokens carried from the last round / frame
    prev_memory_valid: ArrayT  # (B, G)
    group_valid: ArrayT  # (B, G) 1.0 for real objects, 0.0 for padding


def empty_prompt_tensors(
    *,
    batch: int,
    groups: int,
    slots: int,
    samples: int,
    memory_tokens: int,
    dim: int,
    embed_dim: int,
    mask_hw: tuple[int, int],
) -> PromptTensors[np.ndarray]:
    """All-padding inputs (float32 zeros) of the given sizes; builders fill them in."""
    b, g, p, s, k = batch, groups, slots, samples, memory_tokens
    zeros = np.zeros
    return PromptTensors(
        visual_coords=zeros((b, g, p, s, 2), np.float32),
        visual_sample_valid=zeros((b, g, p, s), np.float32),
        visual_kind=zeros((b, g, p, 4), np.float32),
        visual_positive=zeros((b, g, p), np.float32),
        visual_valid=zeros((b, g, p), np.float32),
        text_embed=zeros((b, g, embed_dim), np.float32),
        text_valid=zeros((b, g), np.float32),
        ref_token=zeros((b, g, dim), np.float32),
        ref_valid=zeros((b, g), np.float32),
        prev_mask=zeros((b, g, *mask_hw), np.float32),
        prev_mask_valid=zeros((b, g), np.float32),
        prev_memory=zeros((b, g, k, dim), np.float32),
        prev_memory_valid=zeros((b, g), np.float32),
        group_valid=zeros((b, g), np.float32),
    )
