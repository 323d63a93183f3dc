"""Random-weight models whose every path computes something.

Some parts of the decoder start at zero (position projections, the prompt-to-pixel read-out),
so training starts without them. On a freshly built model that makes those paths contribute
exactly nothing, so a parity or export test would pass whatever the exported graph does there.
These helpers give them random values.
"""

from __future__ import annotations

import torch

from seem_ros.model.build import build_model
from seem_ros.model.click_distance import OUTPUT_SCALE
from seem_ros.model.seem import SEEM

ZERO_INITIALISED = (
    "value_position.",
    "mask_position.",
    "prompt_to_pixel.",
    "click_distance.",
    "grounding.query_side.",
    "grounding.geometry_direction.",
)


def activate_neutral_parts(model: SEEM, *, seed: int = 0, std: float = 0.1) -> SEEM:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if any(part in name for part in ZERO_INITIALISED) and not parameter.any():
                # the click-distance head's output is scaled up (for fine-tuning): undo that
                scale = std / OUTPUT_SCALE if "click_distance." in name else std
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return model


def random_model(config: str = "tiny", *, seed: int = 0) -> SEEM:
    """``build_model`` with the zero-initialised additive parts made non-zero."""
    return activate_neutral_parts(build_model(config, seed=seed), seed=seed)
