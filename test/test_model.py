"""The SEEM model itself: shapes, gradients, save/load, backbones, text towers, attention rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from random_weights import random_model

from seem_ros.model.build import build_model, load_model, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.model.prompt_tensors import PromptTensors
from seem_ros.model.weights import WeightsError
from seem_ros.prompt_encoding import PromptLayout


def random_prompts(model, groups: int = 2, seed: int = 0) -> PromptTensors:
    """Every kind of prompt input filled with random but valid values."""
    rng = np.random.default_rng(seed)
    t = PromptLayout.of(model).empty(groups=groups, input_hw=(model.config.image_size,) * 2)
    t.visual_coords[:] = rng.uniform(0.05, 0.95, t.visual_coords.shape)
    t.visual_sample_valid[:] = 1.0
    t.visual_kind[..., 0] = 1.0
    t.visual_positive[:] = rng.integers(0, 2, t.visual_positive.shape)
    t.visual_valid[:, :, :3] = 1.0
    t.text_embed[:] = rng.normal(size=t.text_embed.shape)
    t.text_valid[:] = 1.0
    t.ref_token[:] = rng.normal(size=t.ref_token.shape)
    t.ref_valid[:] = 1.0
    t.prev_mask[:, :, 10:30, 10:30] = 1.0
    t.prev_mask_valid[:] = 1.0
    t.prev_memory[:] = rng.normal(size=t.prev_memory.shape)
    t.prev_memory_valid[:] = 1.0
    t.group_valid[:] = 1.0
    return t.to_torch()


@pytest.fixture(scope="module")
def model():
    return random_model("tiny", seed=0)


def test_encode_gives_mask_features_and_three_levels(model):
    features = model.encode(torch.rand(1, 3, 256, 256) * 255)
    assert [tuple(f.shape) for f in features] == [
        (1, 64, 64, 64),
        (1, 64, 8, 8),
        (1, 64, 16, 16),
        (1, 64, 32, 32),
    ]


def test_decode_output_shapes(model):
    with torch.no_grad():
        out = model.decode(
            model.encode(torch.rand(1, 3, 256, 256) * 255), random_prompts(model, groups=3)
        )
    assert out["object_masks"].shape == (1, 16, 64, 64)
    assert out["object_embeds"].shape == (1, 16, 64)
    assert out["group_masks"].shape == (1, 3, 64, 64)
    assert out["group_scores"].shape == (1, 3)
    assert out["memory"].shape == (1, 3, 2, 64)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_gradients_reach_every_trainable_parameter():
    # zero-initialised read-outs block the gradient of the parts behind them for one step
    model = random_model("tiny", seed=1).train()
    image = torch.rand(2, 3, 256, 256) * 255
    prompts = random_prompts(model)
    prompts = PromptTensors(**{k: torch.cat([v, v]) for k, v in prompts.as_dict().items()})
    out = model.decode(model.encode(image), prompts, with_aux=True)
    class_embeds = model.encode_text(["star", "ring", "the red star"])
    region = model.encode(image[:1])[0]
    reference = model.reference_token(region, torch.rand(1, 16, 2), torch.ones(1, 16))
    loss = (
        out["object_masks"].mean()
        + out["group_masks"].mean()
        + model.classify(out["object_embeds"], class_embeds).logsumexp(-1).mean()
        + out["group_scores"].mean()
        + out["object_scores"].mean()
        + out["memory"].mean()
        + model.similarity(out["group_embeds"], class_embeds[2]).mean()
        + (reference**2).mean()
        + sum(a["object_masks"].mean() for a in out["aux"])
        + out["group_grounding"].logsumexp(-1).mean()
    )
    loss.backward()
    dead = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert dead == []


def test_objects_decoded_together_equal_objects_decoded_alone(model):
    """SEEM's attention rules: a group never sees other groups, object queries never see groups."""
    features = model.encode(torch.rand(1, 3, 256, 256) * 255)
    both = random_prompts(model, groups=2, seed=3)
    with torch.no_grad():
        together = model.decode(features, both)
        for g in range(2):
            alone = PromptTensors(**{k: v[:, g : g + 1] for k, v in both.as_dict().items()})
            single = model.decode(features, alone)
            assert torch.allclose(
                together["group_masks"][:, g], single["group_masks"][:, 0], atol=1e-4
            )
            assert torch.allclose(together["object_masks"], single["object_masks"], atol=1e-4)


def test_padding_groups_do_not_change_real_groups(model):
    features = model.encode(torch.rand(1, 3, 256, 256) * 255)
    prompts = random_prompts(model, groups=2, seed=4)
    padded = prompts.as_dict()
    padded["group_valid"] = padded["group_valid"].clone()
    padded["group_valid"][:, 1] = 0.0
    first = PromptTensors(**{k: v[:, :1] for k, v in prompts.as_dict().items()})
    with torch.no_grad():
        a = model.decode(features, PromptTensors(**padded))["group_masks"][:, 0]
        b = model.decode(features, first)["group_masks"][:, 0]
    assert torch.allclose(a, b, atol=1e-4)


def test_memory_changes_the_answer(model):
    features = model.encode(torch.rand(1, 3, 256, 256) * 255)
    with_memory = random_prompts(model, groups=1, seed=5)
    without = PromptTensors(**with_memory.as_dict())
    without.prev_mask_valid = torch.zeros_like(without.prev_mask_valid)
    without.prev_memory_valid = torch.zeros_like(without.prev_memory_valid)
    with torch.no_grad():
        a = model.decode(features, with_memory)["group_masks"]
        b = model.decode(features, without)["group_masks"]
    assert not torch.allclose(a, b)


def test_save_load_round_trip_is_bit_exact(model, tmp_path):
    card = ModelCard(config=model.config, vocabulary=["star", "ring"], provenance={"test": True})
    path = save_model(model, tmp_path / "m.safetensors", card)
    loaded, loaded_card = load_model(path)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded_card.vocabulary == ["star", "ring"]
    image = torch.rand(1, 3, 256, 256) * 255
    with torch.no_grad():
        assert all(torch.equal(x, y) for x, y in zip(model.encode(image), loaded.encode(image)))


def test_corrupt_weights_raise_weights_error(model, tmp_path):
    path = save_model(model, tmp_path / "m.safetensors", ModelCard(config=model.config))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum"):
        load_model(path)


def test_truncated_weights_without_checksum_raise_weights_error(model, tmp_path):
    card = ModelCard(config=model.config)
    path = save_model(model, tmp_path / "m.safetensors", card)
    path.write_bytes(path.read_bytes()[:1000])
    card.weights_sha256 = ""
    card.save(path.with_suffix(".json"))
    with pytest.raises(WeightsError, match="cannot read"):
        load_model(path)


def test_missing_weights_raise_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "nothing.safetensors")


def test_configs_choose_sizes():
    tiny, base = load_config("tiny"), load_config("base")
    assert base.decoder.hidden_dim > tiny.decoder.hidden_dim
    with pytest.raises(ValueError, match="built-in configs"):
        load_config("enormous")


def test_timm_backbone_by_name_runs():
    model = build_model("tiny_timm", seed=0)
    features = model.encode(torch.rand(1, 3, 256, 256) * 255)
    assert features[0].shape == (1, 64, 64, 64)


def _resnet18_file(path):
    import timm
    from safetensors.torch import save_file

    reference = timm.create_model("resnet18", pretrained=False)
    torch.nn.init.constant_(reference.conv1.weight, 0.125)
    save_file(reference.state_dict(), str(path))
    return path


def _clip_file(path):
    import open_clip
    from safetensors.torch import save_file

    clip = open_clip.CLIP(
        embed_dim=64,
        vision_cfg=open_clip.CLIPVisionCfg(layers=1, width=64, patch_size=16, image_size=32),
        text_cfg=open_clip.CLIPTextCfg(
            context_length=77, vocab_size=49408, width=128, heads=2, layers=2
        ),
    )
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    return clip


def test_timm_backbone_loads_local_weights(tmp_path):
    from seem_ros.train.trainer import load_pretrained_parts

    model = build_model("tiny_timm")
    load_pretrained_parts(model, backbone=_resnet18_file(tmp_path / "resnet18.safetensors"))
    assert torch.all(model.backbone.body.conv1.weight == 0.125)


def test_open_clip_text_tower_loads_from_a_local_clip_checkpoint(tmp_path):
    import open_clip

    from seem_ros.train.trainer import load_pretrained_parts

    clip = _clip_file(tmp_path / "clip.safetensors")
    config = load_config("tiny")
    config.text.vocab_size = 49408
    model = build_model(config)
    load_pretrained_parts(model, text=tmp_path / "clip.safetensors")
    assert torch.equal(model.text_encoder.tower.token_embedding.weight, clip.token_embedding.weight)
    ours = model.encode_text(["a photo of a mug"])
    theirs = clip.encode_text(
        open_clip.tokenize(["a photo of a mug"], context_length=77), normalize=True
    )
    # ours truncates the context to 16 tokens; the causal mask makes early positions identical
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_text_tower_of_the_wrong_size_is_rejected(tmp_path):
    from safetensors.torch import save_file

    from seem_ros.train.trainer import load_pretrained_parts

    save_file({"token_embedding.weight": torch.zeros(10, 10)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match="not an open_clip text tower"):
        load_pretrained_parts(build_model("tiny"), text=tmp_path / "bad.safetensors")


def test_the_built_in_backbone_has_no_pretrained_weights_to_load(tmp_path):
    from seem_ros.train.trainer import load_pretrained_parts

    with pytest.raises(ValueError, match="built in"):
        load_pretrained_parts(build_model("tiny"), backbone=tmp_path / "resnet18.safetensors")


def test_a_model_started_from_pretrained_files_loads_after_they_are_gone(tmp_path):
    """The saved weights + card are the whole model: the files its parts were first
    initialised from are not needed (nor named) to load it."""
    from seem_ros.train.trainer import load_pretrained_parts

    backbone = _resnet18_file(tmp_path / "resnet18.safetensors")
    _clip_file(tmp_path / "clip.safetensors")
    config = load_config("tiny_timm")
    config.text.vocab_size = 49408
    model = build_model(config)
    load_pretrained_parts(model, backbone=backbone, text=tmp_path / "clip.safetensors")
    saved = save_model(model, tmp_path / "model" / "m.safetensors", ModelCard(config=config))
    backbone.unlink()
    (tmp_path / "clip.safetensors").unlink()
    assert "pretrained" not in saved.with_suffix(".json").read_text()
    loaded, _ = load_model(saved)
    image = torch.rand(1, 3, 256, 256) * 255
    with torch.no_grad():
        assert torch.equal(loaded.encode(image)[0], model.eval().encode(image)[0])
        assert torch.equal(loaded.encode_text(["a mug"]), model.encode_text(["a mug"]))


def test_a_card_naming_a_vanished_pretrained_file_still_loads(model, tmp_path, caplog):
    """Cards written before the config held only the architecture name the files the backbone
    and text tower started from; those paths are ignored, with a warning that says so."""
    import json

    from seem_ros.model.build import card_path_for

    saved = save_model(model, tmp_path / "m.safetensors", ModelCard(config=model.config))
    card = json.loads(card_path_for(saved).read_text())
    card["config"]["backbone"]["pretrained_path"] = str(tmp_path / "gone.safetensors")
    card["config"]["text"]["pretrained_path"] = None
    card_path_for(saved).write_text(json.dumps(card))
    with caplog.at_level("WARNING"):
        loaded, _ = load_model(saved)
    assert "backbone.pretrained_path" in caplog.text and "gone.safetensors" in caplog.text
    assert torch.equal(loaded.decoder.query_feat, model.decoder.query_feat)


def test_half_precision_file_is_half_the_size_and_loads_as_float32(model, tmp_path):
    full = save_model(model, tmp_path / "full.safetensors", ModelCard(config=model.config))
    half = save_model(
        model, tmp_path / "half.safetensors", ModelCard(config=model.config), dtype=torch.float16
    )
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded, card = load_model(half)
    assert card.provenance["weights_dtype"] == "float16"
    weight = loaded.decoder.query_feat
    assert weight.dtype == torch.float32
    assert torch.allclose(weight, model.decoder.query_feat, atol=1e-3)
    assert not torch.equal(weight, model.decoder.query_feat)  # rounded, as it should be


def _variant(name: str, **decoder: object):
    import dataclasses

    config = load_config(name)
    return dataclasses.replace(config, decoder=dataclasses.replace(config.decoder, **decoder))


def test_a_card_may_still_name_the_retired_decoder_switches_when_on():
    """Cards written before the decoder's parts became permanent (the shipped one) load."""
    from seem_ros.model.config import ModelConfig

    data = load_config("tiny").to_dict()
    data["decoder"] |= {
        "position_in_values": True,
        "position_in_mask_features": True,
        "coarse_attention_masks": True,
    }
    assert ModelConfig.from_dict(data) == load_config("tiny")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("position_in_values", False),
        ("position_in_mask_features", False),
        ("coarse_attention_masks", False),
        ("prompt_to_pixel_heads", 0),
    ],
)
def test_a_decoder_without_a_permanent_part_is_refused_with_the_reason(key, value):
    from seem_ros.model.config import ModelConfig

    data = load_config("tiny").to_dict()
    data["decoder"][key] = value
    with pytest.raises(ValueError, match="no longer load"):
        ModelConfig.from_dict(data)


def test_weights_lacking_a_part_cannot_initialise_a_model(model, tmp_path):
    from safetensors.torch import save_file

    from seem_ros.model.build import card_path_for, load_into

    path = save_model(model, tmp_path / "full.safetensors", ModelCard(config=model.config))
    state = {k: v for k, v in model.state_dict().items() if "mask_position" not in k}
    lacking = tmp_path / "lacking.safetensors"
    save_file(state, str(lacking))
    card = ModelCard.load(card_path_for(path))
    card.weights_sha256 = ""
    card.save(card_path_for(lacking))
    with pytest.raises(WeightsError, match="mask_position"):
        load_into("tiny", lacking)


def test_weights_of_another_size_cannot_initialise_a_model(tmp_path):
    from seem_ros.model.build import load_into

    other = build_model(_variant("tiny", ffn_dim=128), seed=0)
    path = save_model(other, tmp_path / "other.safetensors", ModelCard(config=other.config))
    with pytest.raises(WeightsError, match="cannot initialise"):
        load_into("tiny", path)


def test_coarse_attention_masks_are_the_pooled_full_masks(model):
    """Guiding masked attention at half resolution is exact pooling, not an approximation of
    the logits: the mask head is linear in the pixel features."""
    outputs = torch.randn(1, 5, model.decoder.dim)
    features = torch.randn(1, model.decoder.dim, 64, 64)
    full = model.decoder.mask_logits(outputs, features)
    coarse = model.decoder.mask_logits(outputs, torch.nn.functional.avg_pool2d(features, 2))
    assert torch.allclose(coarse, torch.nn.functional.avg_pool2d(full, 2), atol=1e-4)


@pytest.mark.parametrize(
    ("layers", "levels"),
    [(1, [2]), (2, [1, 2]), (3, [0, 1, 2]), (4, [2, 0, 1, 2]), (9, [0, 1, 2] * 3)],
)
def test_the_last_decoder_layer_attends_the_finest_level(layers, levels):
    """Layers cycle 1/32, 1/16, 1/8 aligned to the end: a short decoder (a student) drops the
    coarsest levels, never the 1/8 one; three or nine layers keep the plain cycle."""
    from seem_ros.model.decoder import SEEMDecoder

    decoder = SEEMDecoder(
        dim=16,
        embed_dim=8,
        num_queries=2,
        num_layers=layers,
        num_heads=2,
        ffn_dim=16,
        memory_tokens=1,
    )
    assert [decoder.level_of_layer(i) for i in range(layers)] == levels


def test_a_two_layer_decoder_reads_the_1_8_level_and_not_the_1_32_one():
    """The schedule is what runs: a two-layer decoder's object embeddings change with the 1/8
    map and ignore the 1/32 map."""
    small = random_model("student_nano", seed=0).eval()
    prompts = random_prompts(small, groups=1)
    with torch.no_grad():
        mask_features, level_32, level_16, level_8 = small.encode(torch.rand(1, 3, 160, 160) * 255)
        base = small.decode((mask_features, level_32, level_16, level_8), prompts)
        coarse = small.decode((mask_features, level_32 + 1.0, level_16, level_8), prompts)
        fine = small.decode((mask_features, level_32, level_16, level_8 + 1.0), prompts)
    assert torch.equal(coarse["object_embeds"], base["object_embeds"])
    assert not torch.allclose(fine["object_embeds"], base["object_embeds"], atol=1e-4)


def test_prompt_to_pixel_reads_only_valid_tokens_of_its_own_object():
    """Each object's correction depends on its own valid tokens: padding and other objects'
    tokens change nothing, and with no valid token left it is a constant (the null key)."""
    from seem_ros.model.position import sine_position_map
    from seem_ros.model.prompt_to_pixel import PromptToPixel

    torch.manual_seed(0)
    part = PromptToPixel(dim=32, num_heads=2)
    torch.nn.init.normal_(part.out.weight, std=0.3)
    torch.nn.init.normal_(part.out.bias, std=0.3)
    embeds, pixels = torch.randn(1, 2, 32), torch.randn(1, 32, 16, 16)
    positions = sine_position_map(16, 16, 32, torch.device("cpu"))
    tokens, valid = torch.randn(1, 2, 5, 32), torch.ones(1, 2, 5)
    valid[0, 0, 3:] = 0.0
    with torch.no_grad():
        before = part(embeds, pixels, positions, tokens, valid)
        changed = tokens.clone()
        changed[0, 0, 3:] = torch.randn(2, 32)  # object 0's padding
        changed[0, 1] = torch.randn(5, 32)  # object 1 entirely
        after = part(embeds, pixels, positions, changed, valid)
        assert torch.allclose(before[0, 0], after[0, 0], atol=1e-6)
        assert not torch.allclose(before[0, 1], after[0, 1])
        assert before[0, 0].std() > 0  # a real spatial correction
        nothing = part(embeds, pixels, positions, tokens, torch.zeros(1, 2, 5))
    assert torch.allclose(nothing, nothing[..., :1, :1].expand_as(nothing), atol=1e-6)
