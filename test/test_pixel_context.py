"""Context blocks of the pixel decoder: dilated residual pairs that start as the identity."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from seem_ros.model.build import build_model, load_into, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import DecoderConfig, load_config
from seem_ros.model.pixel_decoder import ContextBlock, PixelDecoder


def _with_blocks(blocks: int):
    tiny = load_config("tiny")
    return replace(tiny, decoder=replace(tiny.decoder, pixel_context_blocks=blocks))


def test_a_new_block_is_the_identity_on_non_negative_maps():
    block = ContextBlock(16, dilation=4).eval()
    x = torch.rand(2, 16, 12, 20)
    assert torch.equal(block(x), x)


def test_dilations_cycle_and_the_mask_features_keep_their_shape():
    decoder = PixelDecoder(in_channels=(8, 8, 8, 8), hidden_dim=16, context_blocks=5)
    assert [block.body[0].dilation[0] for block in decoder.context] == [1, 2, 4, 8, 1]
    features = [torch.rand(1, 8, 64 // s, 88 // s) for s in (1, 2, 4, 8)]
    mask_features, levels = decoder(features)
    assert mask_features.shape == (1, 16, 64, 88)
    assert [level.shape[-2:] for level in levels] == [(8, 11), (16, 22), (32, 44)]


def test_weights_without_blocks_initialise_a_model_with_them(tmp_path):
    """Fine-tuning adds blocks to older weights and starts from exactly their outputs."""
    old_config = _with_blocks(0)
    old = build_model(old_config, seed=5).eval()
    path = save_model(old, tmp_path / "old.safetensors", ModelCard(old_config))
    new = load_into(_with_blocks(3), path).eval()
    assert len(new.pixel_decoder.context) == 3 and len(old.pixel_decoder.context) == 0
    image = torch.rand(1, 3, 256, 320) * 255
    with torch.no_grad():
        a, b = old.encode(image), new.encode(image)
    for old_map, new_map in zip(a, b, strict=True):
        assert torch.equal(old_map, new_map)


def test_the_count_must_not_be_negative():
    with pytest.raises(ValueError, match="pixel_context_blocks"):
        DecoderConfig(pixel_context_blocks=-1)


@pytest.mark.parametrize(
    ("recipe_name", "block_rate"),
    [("train_tiny_context.yaml", 0.001), ("train_tiny_context_long.yaml", 0.0003)],
)
def test_the_context_recipes_start_from_weights_in_the_repository(recipe_name, block_rate):
    """Stage 16 starts from stage 12, stage 17 from the stage-16 candidate: both must load."""
    from pathlib import Path

    from seem_ros.train.config import TrainConfig

    root = Path(__file__).parent.parent
    recipe = TrainConfig.load(root / "config" / recipe_name)
    assert recipe.part_lr == {"pixel_decoder.context.": block_rate}
    model = load_into(load_config(root / recipe.model), root / recipe.init_from)
    assert len(model.pixel_decoder.context) == 4
