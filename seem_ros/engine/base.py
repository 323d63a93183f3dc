"""The one interface every inference backend implements (numpy in, numpy out)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..model.prompt_tensors import PromptTensors

Features = tuple[np.ndarray, ...]

DECODER_OUTPUTS = (
    "object_masks",
    "object_embeds",
    "group_masks",
    "group_embeds",
    "group_scores",
    "memory",
)
OPTIONAL_DECODER_OUTPUTS = ("group_grounding",)
"""Outputs only some decoders have: ``group_grounding`` (1, G, N), the query-grounding head's
scores of which generic query answers each object's phrase (``model/query_grounding.py``)."""


class EngineError(RuntimeError):
    """A backend is missing, failed to load, or cannot run the given inputs."""


class Engine(ABC):
    """Runs the two inference graphs: ``encode(image) -> features`` and
    ``decode(features, prompts) -> outputs`` (see :data:`DECODER_OUTPUTS`)."""

    name: str = "abstract"
    precision: str = "fp32"

    @property
    def max_slots(self) -> int | None:
        """Most visual-prompt slots per object decode takes (None: the model's maximum)."""
        return None

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """The one (height, width) ``encode`` takes (exported graphs), or None (any)."""
        return None

    @abstractmethod
    def encode(self, image: np.ndarray) -> Features:
        """(1, 3, H, W) float32 RGB 0..255 -> the four feature maps."""

    @abstractmethod
    def decode(
        self, features: Features, prompts: PromptTensors[np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Features of one image + prompt tensors -> decoder outputs as float32 arrays."""

    def describe(self) -> str:
        return f"{self.name} ({self.precision})"
