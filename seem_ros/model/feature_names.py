"""The names of ``encode``'s outputs per model family (torch-free).

They name the encoder graph's outputs and the decoder graph's feature inputs, so the engines
that run exported graphs without PyTorch need them without importing the models.
"""

from __future__ import annotations

FEATURE_NAMES = ("mask_features", "level_32", "level_16", "level_8")
"""Our models: the mask features (1/4) and the pixel decoder's 1/32, 1/16 and 1/8 maps."""

OFFICIAL_FEATURE_NAMES = (
    "mask_features",
    "level_32",
    "level_16",
    "level_8",
    *(f"attn_{kind}_{stride}" for stride in (32, 16, 8) for kind in ("keys", "values")),
    *(f"mask_features_{stride}" for stride in (32, 16, 8)),
    *(f"spatial_map_{stride}" for stride in (32, 16, 8)),
)
"""Official models: the mask features, the three pixel-decoder maps, and what the decoder needs
of the image alone (``OfficialSEEMDecoder.per_image``: attention keys/values, mask features per
level, spatial-token maps): one encoding pays for them, every decode of that image reuses them."""


def feature_names(family: str) -> tuple[str, ...]:
    """The encoder's outputs (and the decoder's feature inputs) of a model family."""
    return OFFICIAL_FEATURE_NAMES if family == "official_v1" else FEATURE_NAMES
