"""Official-family models for tests: a small config for wiring (fast), full Focal-T weights of
the official shapes for shapes and parity."""

from __future__ import annotations

import numpy as np

from seem_ros.model.build import build_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import ModelConfig
from seem_ros.model.official.config import OfficialConfig
from seem_ros.segmenter import Segmenter


def small_official_config() -> ModelConfig:
    """The official architecture at toy sizes: every module and rule, a fraction of the cost."""
    return ModelConfig(
        name="official_small_test",
        family="official_v1",
        image_size=64,
        official=OfficialConfig(
            backbone={
                "variant": "focal_dw",
                "embed_dim": 16,
                "depths": (1, 1, 1, 1),
                "focal_levels": (2, 2, 2, 2),
                "focal_windows": (3, 3, 3, 3),
                "use_conv_embed": True,
                "use_postln": True,
                "use_layerscale": True,
                "scaling_modulator": True,
            },
            conv_dim=32,
            mask_dim=32,
            encoder_layers=1,
            hidden_dim=32,
            num_queries=8,
            decoder_layers=4,
            num_heads=4,
            ffn_dim=64,
            dim_proj=32,
            spatial_memories=8,
            spatial_queries=3,
            max_spatial_len=24,
            text_width=32,
            text_layers=1,
            text_heads=4,
        ),
    )


def small_official_segmenter(seed: int = 0, **kwargs: object) -> Segmenter:
    model = build_model(small_official_config(), seed=seed)
    card = ModelCard(config=model.config, stuff_classes=["wall"])
    return Segmenter(model, card, **kwargs)  # type: ignore[arg-type]


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour image (blobs, not pixel noise, so masks have extent)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 16), max(2, width // 16), 3))
    import cv2

    return cv2.resize(small.astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
