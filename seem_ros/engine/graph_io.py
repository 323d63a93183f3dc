"""Input checks and decoder feeds shared by the engines that run the exported graphs.

ONNX Runtime and TensorRT run the same graphs (see :mod:`.onnx_export`), so they validate
their inputs, pick the decoder graph for a prompt count and pad the prompts to it alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model.official.prompt_tensors import OfficialPromptTensors
from ..model.prompt_tensors import PromptTensors
from ..model.seem import FEATURE_NAMES
from .base import EngineError, Features
from .onnx_export import ExportError, ExportManifest, pad_official_prompts, pad_prompts


def load_manifest(manifest: ExportManifest | Path) -> ExportManifest:
    """``manifest`` itself, or the manifest of the export folder it names.

    Raises:
        EngineError: The folder holds no usable export.
    """
    try:
        return manifest if isinstance(manifest, ExportManifest) else ExportManifest.load(manifest)
    except ExportError as error:
        raise EngineError(str(error)) from error


def check_image(image: np.ndarray, expected: tuple[int, int, int, int]) -> None:
    """Raise EngineError unless ``image`` has the encoder's input shape (``image_shape`` of
    the export manifest)."""
    if tuple(np.shape(image)) != tuple(expected):
        raise EngineError(f"encode expects an image of shape {expected}, got {np.shape(image)}")


def check_features(features: Features, names: tuple[str, ...] = FEATURE_NAMES) -> None:
    """Raise EngineError unless ``features`` has one map per decoder feature input."""
    if len(features) != len(names):
        raise EngineError(f"decode expects {len(names)} feature maps, got {len(features)}")


def decoder_graph(
    manifest: ExportManifest, groups: int, *, visual_only: bool = False
) -> tuple[int, Path]:
    """The group count and file of the smallest decoder graph for ``groups`` objects (its
    visual-only variant, where exported, for prompt sets without phrases or references).

    Raises:
        EngineError: No exported decoder graph takes that many groups.
    """
    try:
        return manifest.decoder_for(groups, visual_only=visual_only)
    except ExportError as error:
        raise EngineError(str(error)) from error


def decoder_feed(
    features: Features,
    prompts: PromptTensors[np.ndarray] | OfficialPromptTensors[np.ndarray],
    graph_groups: int,
    manifest: ExportManifest,
    *,
    visual_only: bool = False,
) -> dict[str, np.ndarray]:
    """Decoder inputs by name: the feature maps, and ``prompts`` padded to the graph's
    ``graph_groups`` groups and its prompt sizes (visual slots; official: pixels, tokens)."""
    try:
        if isinstance(prompts, OfficialPromptTensors):
            assert manifest.samples is not None and manifest.text_length is not None
            padded = pad_official_prompts(
                prompts,
                graph_groups,
                manifest.samples,
                manifest.text_length,
                visual_only=visual_only,
            )
        else:
            padded = pad_prompts(prompts, graph_groups, manifest.slots)
    except ExportError as error:
        raise EngineError(str(error)) from error
    return dict(zip(manifest.feature_names, features)) | padded.as_dict()


def visual_only(prompts: PromptTensors[np.ndarray] | OfficialPromptTensors[np.ndarray]) -> bool:
    """Whether an official prompt set has no phrase and no reference region, so the lighter
    visual-only decoder graph answers it exactly."""
    return (
        isinstance(prompts, OfficialPromptTensors)
        and not np.any(prompts.text_valid)
        and not np.any(prompts.ref_valid)
        and prompts.text_tokens.shape[2] == 0
        and prompts.ref_tokens.shape[3] == 0
    )
