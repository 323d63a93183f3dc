"""Input checks and decoder feeds shared by the engines that run the exported graphs.

ONNX Runtime and TensorRT run the same graphs (see :mod:`.onnx_export`), so they validate
their inputs, pick the decoder graph for a prompt count, pad the prompts to it and cut the
padding off the outputs alike. No torch: these engines run without PyTorch installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model.feature_names import FEATURE_NAMES
from ..model.official.prompt_tensors import OfficialPromptTensors
from ..model.prompt_tensors import PromptTensors
from .base import DECODER_OUTPUTS, OPTIONAL_DECODER_OUTPUTS, EngineError, Features
from .export_manifest import ExportError, ExportManifest

GROUP_OUTPUTS = (  # axis 1 is G
    "group_masks",
    "group_embeds",
    "group_scores",
    "memory",
    "group_grounding",
)


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


SLOT_AXIS_INPUTS = (
    "visual_coords",
    "visual_sample_valid",
    "visual_kind",
    "visual_positive",
    "visual_valid",
)


def pad_prompts(
    prompts: PromptTensors[np.ndarray], groups: int, slots: int | None = None
) -> PromptTensors[np.ndarray]:
    """Pad the (B, G, ...) prompt tensors with zero groups (``group_valid = 0``) to ``groups``
    and, when given, the visual-slot axis (axis 2) with empty slots (``visual_valid = 0``) to
    ``slots``. Neither kind of padding changes a result."""
    have = prompts.num_groups
    have_slots = int(prompts.visual_valid.shape[2])
    if have > groups:
        raise ExportError(f"cannot pad {have} groups down to {groups}")
    if slots is not None and have_slots > slots:
        raise ExportError(f"{have_slots} visual-prompt slots but the graph takes {slots}")
    if have == groups and (slots is None or have_slots == slots):
        return prompts

    def pad(name: str, value: np.ndarray) -> np.ndarray:
        # zeros + one slice copy: np.pad's generality costs ~50 us per input, which is most of
        # the host-side overhead of a one-object decode
        shape = list(value.shape)
        shape[1] = groups
        if slots is not None and name in SLOT_AXIS_INPUTS:
            shape[2] = slots
        padded = np.zeros(shape, dtype=np.float32)
        padded[tuple(slice(0, n) for n in value.shape)] = value
        return padded

    return PromptTensors(**{k: pad(k, v) for k, v in prompts.as_dict().items()})


OFFICIAL_PADDED_AXES = {
    "spatial_coords": 3,
    "spatial_valid": 3,
    "text_tokens": 2,
    "text_token_valid": 2,
    "ref_tokens": 3,
    "ref_token_valid": 2,
}
"""Official prompt inputs whose pixel (S, reference S_r) or token (L) axis is padded to the
graph's size (graphs take S_r = S, the most pixels a region gives)."""


def pad_official_prompts(
    prompts: OfficialPromptTensors[np.ndarray],
    groups: int,
    samples: int,
    text_length: int,
    *,
    visual_only: bool = False,
) -> OfficialPromptTensors[np.ndarray]:
    """Pad groups (``group_valid = 0``), prompt and reference pixels and phrase tokens (valid 0)
    to a graph's fixed sizes; the decoder gives padded entries no weight, so no result
    changes. A visual-only graph takes no phrase tokens and no reference pixels."""
    sizes = {
        "spatial_coords": samples,
        "spatial_valid": samples,
        "text_tokens": 0 if visual_only else text_length,
        "text_token_valid": 0 if visual_only else text_length,
        "ref_tokens": 0 if visual_only else samples,
        "ref_token_valid": 0 if visual_only else samples,
    }
    if prompts.num_groups > groups:
        raise ExportError(f"cannot pad {prompts.num_groups} groups down to {groups}")

    def pad(name: str, value: np.ndarray) -> np.ndarray:
        shape = list(value.shape)
        shape[1] = groups
        if name in OFFICIAL_PADDED_AXES:
            axis = OFFICIAL_PADDED_AXES[name]
            if shape[axis] > sizes[name]:
                raise ExportError(
                    f"{name}: {shape[axis]} entries but the graph takes {sizes[name]}"
                )
            shape[axis] = sizes[name]
        if list(value.shape) == shape:
            return value
        padded = np.zeros(shape, dtype=np.float32)
        padded[tuple(slice(0, n) for n in value.shape)] = value
        return padded

    return OfficialPromptTensors(**{k: pad(k, v) for k, v in prompts.as_dict().items()})


def unpad_outputs(outputs: dict[str, np.ndarray], groups: int) -> dict[str, np.ndarray]:
    """Decoder outputs of a padded graph cut back to the ``groups`` requested, float32."""
    cut = {
        name: value[:, :groups] if name in GROUP_OUTPUTS else value
        for name, value in outputs.items()
    }
    names = (*DECODER_OUTPUTS, *(name for name in OPTIONAL_DECODER_OUTPUTS if name in cut))
    return {name: np.asarray(cut[name], dtype=np.float32) for name in names}
