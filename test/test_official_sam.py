"""Official SEEM v1 SAM-backbone configs (seem_samvitb_v1, seem_samvitl_v1): checkpoint layout,
strict loading, shapes, and the pieces of the SAM ViT and the deformable pixel decoder checked
against hand-computable values.

Numerical parity with the upstream code was measured outside the test suite (it needs the
upstream sources). ViT-L is checked on the meta device only (440 M parameters).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seem_ros.model.config import available_configs, load_config
from seem_ros.model.official.config import OfficialConfig
from seem_ros.model.official.convert import detect_config
from seem_ros.model.official.deform_pixel_decoder import (
    MSDeformAttnPixelDecoder,
    deformable_sampling,
    reference_points,
)
from seem_ros.model.official.manifest import load_manifest, random_official_state_dict
from seem_ros.model.official.sam_vit import (
    SAM_VIT_CONFIGS,
    SamViT,
    build_sam_vit,
    from_windows,
    relative_position_table,
    to_windows,
)
from seem_ros.model.official.seem_v1 import OfficialSEEM

SAM_CONFIGS = ("seem_samvitb_v1", "seem_samvitl_v1")
PREDICTOR = "sem_seg_head.predictor."


def _expected_shapes(config: str) -> dict[str, tuple[int, ...]]:
    entries = load_manifest(config).entries
    return {k: e.shape for k, e in entries.items() if k != "criterion.empty_weight"}


def _meta_model(config: str) -> OfficialSEEM:
    with torch.device("meta"):
        return OfficialSEEM(load_config(config))


@pytest.fixture(scope="module")
def samvitb_state() -> dict[str, torch.Tensor]:
    return random_official_state_dict("seem_samvitb_v1", seed=0, include_training_keys=False)


@pytest.fixture(scope="module")
def samvitb(samvitb_state) -> OfficialSEEM:
    clones = {k: v.clone() for k, v in samvitb_state.items()}
    return OfficialSEEM.from_state_dict(load_config("seem_samvitb_v1"), clones)


# ---------------------------------------------------------------------------- layout
@pytest.mark.parametrize("config", SAM_CONFIGS)
def test_sam_configs_have_exactly_the_checkpoint_keys_and_shapes(config):
    model = _meta_model(config)
    assert isinstance(model.backbone, SamViT)
    assert isinstance(model.sem_seg_head.pixel_decoder, MSDeformAttnPixelDecoder)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state == _expected_shapes(config)
    assert list(state) == list(_expected_shapes(config))  # state-dict order too


@pytest.mark.parametrize("config", SAM_CONFIGS)
def test_the_sem_decoder_is_the_focalnet_configs_one(config):
    """Same predictor keys and shapes as the FocalNet configs (hidden and mask dims 512)."""

    def predictor(name: str) -> dict[str, tuple[int, ...]]:
        return {k: s for k, s in _expected_shapes(name).items() if k.startswith(PREDICTOR)}

    assert predictor(config) == predictor("seem_focalt_v1")
    spec = load_config(config).official
    assert (spec.hidden_dim, spec.mask_dim, spec.conv_dim) == (512, 512, 512)


def test_focalnet_configs_keep_their_modules():
    spec = load_config("seem_focalt_v1").official
    assert (spec.backbone_type, spec.pixel_decoder) == ("focal", "transformer_encoder_fpn")
    with pytest.raises(ValueError, match="backbone_type"):
        OfficialConfig.from_dict({"backbone_type": "swin"})
    with pytest.raises(ValueError, match="pixel_decoder"):
        OfficialConfig.from_dict({"pixel_decoder": "msdeform"})


def test_backbone_configs_follow_the_upstream_sizes():
    base, large = SAM_VIT_CONFIGS["seem_samvitb_v1"], SAM_VIT_CONFIGS["seem_samvitl_v1"]
    assert (base.embed_dim, base.depth, base.num_heads) == (768, 12, 12)
    assert base.global_attn_indexes == (2, 5, 8, 11)
    assert (large.embed_dim, large.depth, large.num_heads) == (1024, 24, 16)
    assert large.global_attn_indexes == (5, 11, 17, 23)
    for config in SAM_CONFIGS:
        assert load_config(config).official.backbone == {
            k: getattr(SAM_VIT_CONFIGS[config], k) for k in load_config(config).official.backbone
        }
        assert load_config(config).official.size_divisibility == 1024


@pytest.mark.parametrize("config", SAM_CONFIGS)
def test_convert_recognises_sam_checkpoints(config):
    state = {k: torch.empty(s, device="meta") for k, s in _expected_shapes(config).items()}
    report = detect_config(state)
    assert (report.config, report.ok) == (config, True)
    assert config in available_configs()  # so `seem-ros convert` accepts it


# ---------------------------------------------------------------------------- running
def test_samvitb_loads_random_official_weights_strictly(samvitb, samvitb_state):
    state = samvitb.state_dict()
    assert state.keys() == samvitb_state.keys()
    assert all(torch.equal(state[k], v) for k, v in samvitb_state.items())
    assert samvitb.pixel_mean.device.type == "cpu" and not samvitb.training


def test_samvitb_encodes_with_the_expected_shapes(samvitb):
    """1024x1024 is the only input the official backbone takes; to keep this fast it runs at
    256x256 with the position embedding cropped to the 16x16 token grid (the global blocks'
    relative-position tables are then resized, as upstream resizes them)."""
    backbone = samvitb.backbone
    full = backbone.pos_embed
    backbone.pos_embed = nn.Parameter(full[:, :16, :16])
    try:
        image = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 255
        with torch.inference_mode():
            features = backbone((image - samvitb.pixel_mean) / samvitb.pixel_std)
            encoded = samvitb.encode(image)
    finally:
        backbone.pos_embed = full
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "res2": (1, 128, 64, 64),
        "res3": (1, 256, 32, 32),
        "res4": (1, 512, 16, 16),
        "res5": (1, 1024, 8, 8),
    }
    mask_features, *levels = encoded[:4]
    assert tuple(mask_features.shape) == (1, 512, 64, 64)
    assert [tuple(level.shape) for level in levels] == [
        (1, 512, 8, 8),  # 1/32 first, as the FocalNet pixel decoder orders them
        (1, 512, 16, 16),
        (1, 512, 32, 32),
    ]
    assert [tuple(kv.shape) for kv in encoded[4:10]] == [
        (3, 1, 8, 64, 64),
        (3, 1, 8, 64, 64),
        (3, 1, 8, 256, 64),
        (3, 1, 8, 256, 64),
        (3, 1, 8, 1024, 64),
        (3, 1, 8, 1024, 64),
    ]
    level_shapes = [(1, 512, 8, 8), (1, 512, 16, 16), (1, 512, 32, 32)]
    assert [tuple(t.shape) for t in encoded[10:]] == level_shapes * 2  # mask features, maps
    assert all(torch.isfinite(t).all() for t in encoded)


def test_sam_vit_takes_only_its_pretraining_size():
    with torch.device("meta"):
        backbone = build_sam_vit("seem_samvitb_v1")
        with pytest.raises(ValueError, match="1024x1024"):
            backbone(torch.empty(1, 3, 512, 512))
        features = backbone(torch.empty(2, 3, 1024, 1024))
    assert [tuple(f.shape) for f in features.values()] == [
        (2, 128, 256, 256),
        (2, 256, 128, 128),
        (2, 512, 64, 64),
        (2, 1024, 32, 32),
    ]


def test_a_small_sam_vit_runs_windowed_and_global_blocks():
    torch.manual_seed(0)
    backbone = SamViT(
        embed_dim=32,
        depth=2,
        num_heads=4,
        global_attn_indexes=(1,),
        window_size=3,  # 4x4 tokens: windows pad to 6x6
        img_size=64,
        out_dims=(8, 16, 32, 64),
    ).eval()
    assert tuple(backbone.blocks[0].attn.rel_pos_h.shape) == (5, 8)  # the window's table
    assert tuple(backbone.blocks[1].attn.rel_pos_h.shape) == (7, 8)  # the grid's table
    with torch.inference_mode():
        features = backbone(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in features.values()] == [
        (2, 8, 16, 16),
        (2, 16, 8, 8),
        (2, 32, 4, 4),
        (2, 64, 2, 2),
    ]


# ---------------------------------------------------------------------------- pieces
def test_windows_round_trip_and_pad_with_zeros():
    x = torch.randn(2, 5, 7, 3)
    windows = to_windows(x, 3)
    assert tuple(windows.shape) == (2 * 2 * 3, 3, 3, 3)
    assert torch.equal(windows[1], x[0, 0:3, 3:6])  # raster order of windows
    # the last window of image 0 covers rows 3..5 and columns 6..8: row 5, columns 7-8 padded
    assert torch.equal(windows[5, :2, 0], x[0, 3:5, 6])
    assert torch.all(windows[5, 2] == 0) and torch.all(windows[5, :, 1:] == 0)
    assert torch.equal(from_windows(windows, 5, 7), x)


def test_relative_position_table_indexes_query_minus_key():
    table = torch.arange(5.0)[:, None]  # offsets -2..2 stored at 0..4
    grid = relative_position_table(table, 3)[..., 0]
    assert torch.equal(grid, torch.tensor([[2.0, 1.0, 0.0], [3.0, 2.0, 1.0], [4.0, 3.0, 2.0]]))
    resized = relative_position_table(torch.arange(7.0)[:, None], 3)  # 7 rows -> 5, linear
    assert tuple(resized.shape) == (3, 3, 1)


def test_deformable_sampling_at_pixel_centres_reads_the_pixels():
    """Sampling points at pixel centres with one-hot weights return those pixels' values."""
    shapes = [(2, 3), (4, 5)]
    batch, heads, dim = 1, 2, 4
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim)
    locations = torch.zeros(batch, 1, heads, 2, 2, 2)  # (B, Q, heads, levels, points, xy)
    weights = torch.zeros(batch, 1, heads, 2, 2)
    # head 0: level 1, point 1 at pixel (y=2, x=3); head 1: level 0, point 0 at (y=1, x=0)
    locations[0, 0, 0, 1, 1] = torch.tensor([(3 + 0.5) / 5, (2 + 0.5) / 4])
    weights[0, 0, 0, 1, 1] = 1.0
    locations[0, 0, 1, 0, 0] = torch.tensor([(0 + 0.5) / 3, (1 + 0.5) / 2])
    weights[0, 0, 1, 0, 0] = 1.0
    out = deformable_sampling(value, shapes, locations, weights)
    assert tuple(out.shape) == (1, 1, heads * dim)
    level1_start = 2 * 3
    torch.testing.assert_close(out[0, 0, :dim], value[0, level1_start + 2 * 5 + 3, 0])
    torch.testing.assert_close(out[0, 0, dim:], value[0, 1 * 3 + 0, 1])
    # outside the map the samples are zero
    weights[0, 0, 1, 0, 0], locations[0, 0, 1, 0, 0] = 1.0, torch.tensor([-1.0, 0.5])
    assert torch.all(deformable_sampling(value, shapes, locations, weights)[0, 0, dim:] == 0)


def test_reference_points_are_pixel_centres_of_each_level():
    points = reference_points([(2, 4), (1, 2)], device=torch.device("cpu"), dtype=torch.float32)
    assert tuple(points.shape) == (1, 10, 2, 2)
    assert torch.equal(points[0, 1, 0], torch.tensor([0.375, 0.25]))  # (x, y) of (0, 1)
    assert torch.equal(points[0, 9, 1], torch.tensor([0.75, 0.5]))
