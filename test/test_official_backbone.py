"""Official SEEM v1 FocalNet backbone and pixel decoder: checkpoint layout and shapes.

Numerical parity with the upstream code was measured outside the test suite (it needs the
upstream sources); golden-value drift checks live with the recorded reference outputs.
"""

from __future__ import annotations

import pytest
import torch

from seem_ros.model.official.focalnet import FOCALNET_CONFIGS, FocalNet, build_focalnet
from seem_ros.model.official.manifest import load_manifest, random_official_state_dict
from seem_ros.model.official.pixel_decoder import TransformerEncoderPixelDecoder

CONFIGS = ("seem_focalt_v1", "seem_focall_v1")
BACKBONE = "backbone."
PIXEL_DECODER = "sem_seg_head.pixel_decoder."


def _manifest_shapes(config: str, prefix: str) -> dict[str, tuple[int, ...]]:
    entries = load_manifest(config).entries
    return {k[len(prefix) :]: e.shape for k, e in entries.items() if k.startswith(prefix)}


def _meta_modules(config: str) -> tuple[FocalNet, TransformerEncoderPixelDecoder]:
    with torch.device("meta"):
        backbone = build_focalnet(config)
        decoder = TransformerEncoderPixelDecoder(in_channels=backbone.out_channels)
    return backbone, decoder


@pytest.fixture(scope="module")
def focalt_weights() -> dict[str, torch.Tensor]:
    return random_official_state_dict("seem_focalt_v1", seed=0)


def _slice(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_layout_matches_the_official_checkpoint(config):
    backbone, decoder = _meta_modules(config)
    for module, prefix in ((backbone, BACKBONE), (decoder, PIXEL_DECODER)):
        ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        assert ours == _manifest_shapes(config, prefix)


@pytest.mark.parametrize("config", CONFIGS)
def test_meta_official_slices_load_strictly(config):
    """Key names and shapes agree for both configs without materialising focall's weights."""
    backbone, decoder = _meta_modules(config)
    for module, prefix in ((backbone, BACKBONE), (decoder, PIXEL_DECODER)):
        state = {
            k: torch.empty(shape, device="meta")
            for k, shape in _manifest_shapes(config, prefix).items()
        }
        module.load_state_dict(state, strict=True, assign=True)


def test_focalt_loads_random_official_weights_and_runs(focalt_weights):
    backbone = build_focalnet("seem_focalt_v1").eval()
    decoder = TransformerEncoderPixelDecoder(in_channels=backbone.out_channels).eval()
    backbone.load_state_dict(_slice(focalt_weights, BACKBONE), strict=True)
    decoder.load_state_dict(_slice(focalt_weights, PIXEL_DECODER), strict=True)
    assert backbone.out_channels == (96, 192, 384, 768)
    assert backbone.out_strides == (4, 8, 16, 32)

    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        features = backbone(image)
        mask_features, multi_scale = decoder(features)

    assert list(features) == ["res2", "res3", "res4", "res5"]
    for (name, feature), channels, stride in zip(
        features.items(), backbone.out_channels, backbone.out_strides
    ):
        assert feature.shape == (1, channels, 64 // stride, 96 // stride), name
        assert torch.isfinite(feature).all(), name
    assert mask_features.shape == (1, 512, 16, 24)
    # upstream order: coarsest first (1/32, 1/16, 1/8)
    assert [tuple(level.shape) for level in multi_scale] == [
        (1, 512, 2, 3),
        (1, 512, 4, 6),
        (1, 512, 8, 12),
    ]
    assert torch.isfinite(mask_features).all()
    assert all(torch.isfinite(level).all() for level in multi_scale)


@pytest.mark.parametrize("variant", ["focal_dw", "focal"])
@pytest.mark.parametrize("use_postln", [True, False])
@pytest.mark.parametrize("use_conv_embed", [True, False])
def test_small_focalnet_variants_run(variant, use_postln, use_conv_embed):
    """The branches the two v1 configs do not take (pre-norm, patch stem) still run."""
    backbone = FocalNet(
        variant=variant,
        embed_dim=8,
        depths=(1, 1, 1, 1),
        focal_levels=(2, 2, 2, 2),
        focal_windows=(3, 3, 3, 3),
        use_conv_embed=use_conv_embed,
        use_postln=use_postln,
        use_postln_in_modulation=True,
        use_layerscale=not use_postln,
    ).eval()
    with torch.inference_mode():
        features = backbone(torch.randn(2, 3, 64, 32))
    assert [tuple(f.shape) for f in features.values()] == [
        (2, 8, 16, 8),
        (2, 16, 8, 4),
        (2, 32, 4, 2),
        (2, 64, 2, 1),
    ]
    has_dw = any(".dw1." in key for key in backbone.state_dict())
    assert has_dw == (variant == "focal_dw")


def test_configs_follow_the_upstream_yamls():
    focalt, focall = FOCALNET_CONFIGS["seem_focalt_v1"], FOCALNET_CONFIGS["seem_focall_v1"]
    # focalt's YAML selects backbone focal_dw, focall's selects focal
    assert (focalt.variant, focall.variant) == ("focal_dw", "focal")
    assert (focalt.embed_dim, focalt.depths, focalt.focal_levels) == (96, (2, 2, 6, 2), (3,) * 4)
    assert (focall.embed_dim, focall.depths, focall.focal_levels) == (192, (2, 2, 18, 2), (4,) * 4)
    with pytest.raises(ValueError):
        build_focalnet("seem_samvitb_v1")
