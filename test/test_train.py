"""Training: the step's losses are finite, training lowers them, checkpoints resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from training_runs import SMALL_MIX, short_run

from seem_ros.data import class_names
from seem_ros.model.build import build_model, load_model
from seem_ros.train.config import TrainConfig
from seem_ros.train.episodes import EpisodeMix, EpisodeSampler
from seem_ros.train.step import StepRunner
from seem_ros.train.trainer import Trainer


def test_episode_has_every_task():
    sampler = EpisodeSampler(vocabulary=list(class_names()), image_size=256, seed=0, mix=SMALL_MIX)
    kinds = set()
    for _ in range(6):
        episode = sampler.sample()
        assert len(episode.images) == len(episode.generic) == 4  # scene + composition + clip pair
        kinds |= {g.kind for g in episode.groups}
    assert {"composition", "memory", "click"} <= kinds


def test_step_losses_are_finite_and_cover_every_term():
    model = build_model("tiny", seed=0).train()
    vocabulary = list(class_names())
    sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=1, mix=SMALL_MIX)
    losses = StepRunner(model, vocabulary)(sampler.sample())
    assert set(losses) == {
        "cls",
        "bce",
        "dice",
        "g_bce",
        "g_dice",
        "g_score",
        "g_cls",
        "g_ground",
        "total",
    }
    assert all(torch.isfinite(v) for v in losses.values())


def test_training_on_one_episode_lowers_its_loss():
    torch.manual_seed(0)
    model = build_model("tiny", seed=0).train()
    vocabulary = list(class_names())
    episode = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=2, mix=SMALL_MIX).sample()
    runner = StepRunner(model, vocabulary)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = []
    for _ in range(25):
        loss = runner(episode)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    assert np.mean(history[-3:]) < 0.75 * np.mean(history[:3])


def test_trainer_checkpoints_logs_and_resumes(tmp_path):
    config = short_run(tmp_path, steps=4, log_every=2, checkpoint_every=2, warmup_steps=2)
    trainer = Trainer(config)
    trainer.train(steps=2)
    log = [
        json.loads(line) for line in (tmp_path / "run" / "loss_log.jsonl").read_text().splitlines()
    ]
    assert log[-1]["step"] == 2 and "total" in log[-1]
    resumed = Trainer(config)
    assert resumed.step == 2
    for a, b in zip(trainer.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    resumed.train()
    assert resumed.step == 4
    _, card = load_model(tmp_path / "run" / "model.safetensors")
    assert card.trained and card.provenance["steps"] == 4 and "circle" in card.vocabulary


def test_unknown_training_config_key_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stepz: 3\n")
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.load(path)


def test_shipped_training_recipe_loads():
    from pathlib import Path

    config = TrainConfig.load(Path(__file__).parent.parent / "config" / "train_tiny.yaml")
    assert config.model == "tiny" and config.mix.scenes > 0


def test_stuff_phrases_can_be_trained_as_referring_targets():
    from seem_ros.data import STUFF_CATEGORIES

    vocabulary = list(class_names())
    mix = EpisodeMix(
        scenes=2, compositions=0, clip_pairs=0, groups_per_scene=1, stuff_phrase_rate=1.0
    )
    episode = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=3, mix=mix).sample()
    stuff = [g for g in episode.groups if vocabulary[g.label] in STUFF_CATEGORIES]
    assert stuff and all(g.kind == "text" and g.text for g in stuff)
    default = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=3, mix=SMALL_MIX).sample()
    assert not [g for g in default.groups if vocabulary[g.label] in STUFF_CATEGORIES]


def corrections_only(*, scenes: int, groups_per_scene: int) -> EpisodeMix:
    """Still scenes only, every prompted object a correction case."""
    return EpisodeMix(
        scenes=scenes,
        compositions=0,
        clip_pairs=0,
        groups_per_scene=groups_per_scene,
        correction_rate=1.0,
        kind_weights=(("click", 1.0),),
    )


def test_correction_objects_start_wrong_and_click_where_the_error_is():
    from seem_ros.eval.metrics import mask_iou

    vocabulary = list(class_names())
    mix = corrections_only(scenes=3, groups_per_scene=3)
    sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=4, mix=mix)
    groups = [g for _ in range(3) for g in sampler.sample().groups]
    assert groups and all(g.kind == "correction" for g in groups)
    polarities = set()
    for group in groups:
        wrong, gt = group.prompt.memory.mask, group.gt_mask
        assert wrong.shape == gt.shape and mask_iou(wrong, gt) < 1.0
        points = group.prompt.points
        assert len(points.coords) == 2 and points.labels[0] == 1
        x, y = (points.coords[1] - 0.5).astype(int)
        positive = bool(points.labels[1])
        polarities.add(positive)
        # the corrective click sits in the error: on a missed object pixel when positive,
        # on a wrongly included pixel when negative
        assert gt[y, x] and not wrong[y, x] if positive else wrong[y, x] and not gt[y, x]
    assert polarities == {True, False}


def test_correction_objects_train_through_the_step():
    model = build_model("tiny", seed=0).train()
    vocabulary = list(class_names())
    mix = corrections_only(scenes=1, groups_per_scene=2)
    episode = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=5, mix=mix).sample()
    losses = StepRunner(model, vocabulary)(episode)
    assert torch.isfinite(losses["total"]) and losses["g_dice"] > 0


def test_correction_objects_can_carry_several_clicks_in_the_error():
    """With ``correction_clicks`` > 1 the extra clicks land in the error region, each with the
    polarity of the truth under it, so a merged neighbour gets several negative clicks."""
    import dataclasses

    vocabulary = list(class_names())
    mix = dataclasses.replace(
        corrections_only(scenes=3, groups_per_scene=3),
        correction_clicks=4,
        wrong_mask_modes=(("merge", 1.0),),
    )
    sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=6, mix=mix)
    groups = [g for _ in range(4) for g in sampler.sample().groups]
    counts = set()
    for group in groups:
        wrong, gt = group.prompt.memory.mask, group.gt_mask
        points = group.prompt.points
        counts.add(len(points.coords))
        for (x, y), label in zip(points.coords[1:] - 0.5, points.labels[1:], strict=True):
            col, row = int(x), int(y)
            assert wrong[row, col] != gt[row, col]  # in the error
            assert bool(label) == bool(gt[row, col])  # labelled by the truth
    assert max(counts) > 2 and counts <= {1, 2, 3, 4, 5}


def test_pretrained_parts_are_for_a_fresh_model_only():
    with pytest.raises(ValueError, match="init_from already holds every part"):
        TrainConfig(init_from="runs/tiny/model.safetensors", pretrained_text="clip.safetensors")


def test_trainer_starts_the_text_tower_from_a_pretrained_file(tmp_path):
    from test_model import _clip_file

    clip = _clip_file(tmp_path / "clip.safetensors")
    (tmp_path / "model.yaml").write_text(
        "name: tiny_clip\n"
        "text: {vocab_size: 49408, width: 128, heads: 2, layers: 2, embed_dim: 64}\n"
    )
    config = TrainConfig(
        model=str(tmp_path / "model.yaml"),
        pretrained_text=str(tmp_path / "clip.safetensors"),
        out_dir=str(tmp_path / "run"),
        mix=SMALL_MIX,
    )
    tower = Trainer(config).model.text_encoder.tower
    assert torch.equal(tower.token_embedding.weight, clip.token_embedding.weight)


def test_an_episode_has_one_frame_shape_seen_at_the_segmenters_scale():
    from seem_ros.data.augment import AugmentConfig
    from seem_ros.transforms import model_input_transform

    vocabulary = list(class_names())
    augment = AugmentConfig(aspect_rate=1.0, photo_stuff_rate=0.5, photo_thing_rate=0.5)
    pytest.importorskip("skimage", reason="photo textures read scikit-image's sample photos")
    episode = EpisodeSampler(
        vocabulary=vocabulary, image_size=256, seed=4, mix=SMALL_MIX, augment=augment
    ).sample()
    shapes = {image.shape[:2] for image in episode.images}
    # the scenes and the clip pair are rendered at one camera-frame shape, short side at the
    # model's size (no crop, no enlargement); the composition stays square (its click)
    cropped = shapes - {(256, 256)}
    assert len(cropped) == 1 and cropped <= {(256, 341), (256, 455)}
    for image, generic in zip(episode.images, episode.generic):
        assert generic.masks.shape[1:] == image.shape[:2]
    model = build_model("tiny", seed=0).train()
    runner = StepRunner(model, vocabulary)
    transforms = runner.transforms(episode)
    (crop_hw,) = cropped
    own = model_input_transform(model.config, *crop_hw)
    assert own.input_hw[1] > 256  # a wide input, as the segmenter makes it
    assert own.scale == 1.0  # rendered at the model's size: objects neither enlarged nor blurred
    for transform, image in zip(transforms, episode.images):
        assert transform.input_hw == own.input_hw  # one stack
        expected = model_input_transform(model.config, *image.shape[:2])
        assert transform.scale == expected.scale  # each at the segmenter's scale
    square = next(k for k, i in enumerate(episode.images) if i.shape[:2] == (256, 256))
    band = transforms[square].image_to_input(episode.images[square])[:, :, 256:]
    assert np.allclose(band, np.asarray(model.config.pixel_mean)[:, None, None])
    grid_hw = runner.layout.mask_hw(own.input_hw)
    on_grid = episode.generic[square].on_grid(transforms[square], grid_hw)
    assert on_grid.shape[1:] == grid_hw and not on_grid[:, :, 64:].any()  # the band is no one's
    losses = runner(episode)
    assert all(torch.isfinite(v) for v in losses.values())


def test_paraphrased_phrases_are_trained():
    vocabulary = list(class_names())
    mix = EpisodeMix(
        scenes=3,
        compositions=0,
        clip_pairs=0,
        groups_per_scene=3,
        paraphrase_rate=1.0,
        kind_weights=(("text", 1.0),),
    )
    sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=5, mix=mix)
    texts = [g.text for g in sampler.sample().groups if g.text]
    assert texts and not all(t.startswith("the ") for t in texts)


def test_clip_pairs_can_come_from_hard_clips():
    mix = EpisodeMix(scenes=0, compositions=0, clip_pairs=1, hard_clip_rate=1.0)
    episode = EpisodeSampler(
        vocabulary=list(class_names()), image_size=256, seed=6, mix=mix
    ).sample()
    assert len(episode.images) == 2 and {g.kind for g in episode.groups} >= {"click"}


@pytest.mark.parametrize(
    ("recipe", "start"),
    [
        ("train_tiny_robust.yaml", "checkpoints/tiny_stage6/seem_tiny_demo.safetensors"),
        ("train_tiny_robust2.yaml", "checkpoints/tiny_stage7/seem_tiny_demo.safetensors"),
        ("train_tiny_robust3.yaml", "checkpoints/tiny_stage8/seem_tiny_demo.safetensors"),
        (
            "train_tiny_robust4.yaml",
            "checkpoints/tiny_stage9_candidate/seem_tiny_stage9.safetensors",
        ),
    ],
)
def test_robust_recipes_load_with_their_augmentation(recipe, start):
    from pathlib import Path

    root = Path(__file__).parent.parent
    config = TrainConfig.load(root / "config" / recipe)
    assert config.init_from == start
    assert (root / config.init_from).is_file()
    assert config.augment is not None and config.augment.photo_set == "train"
    assert config.mix.paraphrase_rate > 0 and config.mix.hard_clip_rate > 0
    assert config.to_dict()["augment"]["aspects"] == ((3, 4), (9, 16))


@pytest.mark.parametrize(
    ("recipe", "start", "part"),
    [
        ("train_tiny_grounding.yaml", "tiny_stage10", "decoder.grounding."),
        ("train_tiny_click_head.yaml", "tiny_stage11", "decoder.click_distance."),
    ],
)
def test_head_recipes_train_only_their_head_from_the_stage_before(recipe, start, part):
    from pathlib import Path

    root = Path(__file__).parent.parent
    config = TrainConfig.load(root / "config" / recipe)
    assert config.init_from == f"checkpoints/{start}/seem_tiny_demo.safetensors"
    assert (root / config.init_from).is_file()
    assert config.train_only == [part]
    assert config.augment is not None and config.augment.photo_set == "train"


def test_twin_clicks_put_the_look_alikes_first_in_clip_pairs(monkeypatch):
    import seem_ros.train.episodes as episodes

    rendered = []
    real_render = episodes.render_clip

    def recorded(*args, **kwargs):
        rendered.append(real_render(*args, **kwargs))
        return rendered[-1]

    monkeypatch.setattr(episodes, "render_clip", recorded)  # records, renders for real
    vocabulary = list(class_names())

    def twin_clicks(rate: float) -> tuple[int, int]:
        mix = EpisodeMix(scenes=0, compositions=0, clip_pairs=1, twin_click_rate=rate)
        sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=8, mix=mix)
        on_twins = clicks = 0
        for _ in range(12):
            rendered.clear()
            episode = sampler.sample()
            frame = rendered[0].frames[0]
            twins = episodes.twin_ids(frame)
            for group in episode.groups:
                if group.kind == "click":
                    clicked = next(
                        s for s in frame.thing_segments if (s.mask == group.gt_mask).all()
                    )
                    on_twins += clicked.id in twins
                    clicks += 1
        return on_twins, clicks

    twins_first, clicks = twin_clicks(1.0)
    twins_by_chance, _ = twin_clicks(0.0)
    assert clicks >= 12 and twins_first > twins_by_chance
    assert twins_first >= clicks // 3


def test_twins_are_things_with_an_exact_look_alike_in_view():
    from seem_ros.data import render_clip, scene_seed
    from seem_ros.train.episodes import twin_ids

    def look(segment):
        return segment.category, segment.colour, segment.size

    found = 0
    for index in range(6):
        frame = render_clip(scene_seed("train", index, stream="clip"), n_frames=2).frames[0]
        twins = twin_ids(frame)
        visible = [s for s in frame.thing_segments if s.area >= 30]
        assert twins <= {s.id for s in visible}
        for thing in visible:
            alike = [s for s in visible if look(s) == look(thing)]
            assert (thing.id in twins) == (len(alike) > 1)
        found += len(twins)
    assert found  # the clips' look-alikes are there to be found


def test_part_learning_rates_go_by_the_longest_matching_prefix():
    from seem_ros.train.trainer import parameter_groups

    model = build_model("tiny", seed=0)
    config = TrainConfig(
        lr=1e-5,
        text_lr=2e-5,
        part_lr={"decoder.": 3e-4, "decoder.click_distance.": 7e-4},
    )
    lr_of = {}
    for group in parameter_groups(model, config):
        for param in group["params"]:
            lr_of[id(param)] = group["lr"]
    for name, param in model.named_parameters():
        if name.startswith("decoder.click_distance."):
            expected = 7e-4
        elif name.startswith("decoder."):
            expected = 3e-4
        elif name.startswith("text_encoder."):
            expected = 2e-5
        else:
            expected = 1e-5
        assert lr_of[id(param)] == expected, name


def test_part_learning_rates_must_name_a_part_and_be_positive(tmp_path):
    with pytest.raises(ValueError, match="part_lr"):
        TrainConfig(part_lr={"decoder.": 0.0})
    config = TrainConfig(out_dir=str(tmp_path), part_lr={"no_such_part.": 1e-3}, steps=1)
    with pytest.raises(ValueError, match="no_such_part"):
        Trainer(config)
