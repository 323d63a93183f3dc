"""The training-only centre-offset task: its targets, its loss, and how the trainer carries it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from training_runs import SMALL_MIX, short_run

from seem_ros.data import class_names
from seem_ros.model.build import build_model
from seem_ros.train.centre_offset import (
    CentreOffsetHead,
    centre_offset_loss,
    centre_offset_targets,
)
from seem_ros.train.config import TrainConfig
from seem_ros.train.episodes import EpisodeSampler
from seem_ros.train.losses import LossWeights
from seem_ros.train.step import StepRunner
from seem_ros.train.trainer import Trainer


def two_touching_twins() -> tuple[np.ndarray, np.ndarray]:
    """Two 4x4 squares side by side on an 8x12 grid, and a stuff region around them."""
    coverage = np.zeros((3, 8, 12), np.float32)
    coverage[0, 2:6, 2:6] = 1.0
    coverage[1, 2:6, 6:10] = 1.0
    coverage[2] = 1.0 - coverage[0] - coverage[1]
    return coverage, np.array([True, True, False])


def test_offsets_point_to_each_objects_own_centre():
    coverage, is_thing = two_touching_twins()
    offsets, weight = centre_offset_targets(coverage, is_thing)
    # the left square's centre is at x = 4, the right one's at x = 8; the short side is 8
    assert offsets[0, 3, 5] == pytest.approx((4.0 - 5.5) / 8)
    assert offsets[0, 3, 6] == pytest.approx((8.0 - 6.5) / 8)
    # across the shared edge the targets point away from each other: features must differ
    assert offsets[0, 3, 5] < 0 < offsets[0, 3, 6]
    assert offsets[1, 2, 3] == pytest.approx((4.0 - 2.5) / 8)
    # stuff is left out of the loss
    assert weight.sum() == 32 and weight[0, 0] == 0 and np.all(offsets[:, 0, 0] == 0)


def test_cells_a_thing_barely_covers_are_left_out():
    coverage, is_thing = two_touching_twins()
    coverage[0, 6, 2:6] = 0.3
    _, weight = centre_offset_targets(coverage, is_thing)
    assert weight[6].sum() == 0


def test_loss_is_zero_only_for_the_right_offsets():
    coverage, is_thing = two_touching_twins()
    offsets, weight = (torch.from_numpy(a)[None] for a in centre_offset_targets(coverage, is_thing))
    assert float(centre_offset_loss(offsets, offsets, weight)) == 0.0
    wrong = offsets.clone()
    wrong[0, 0, 3, 3] += 0.5
    assert float(centre_offset_loss(wrong, offsets, weight)) == pytest.approx(0.5 / 32)
    # stuff cells may predict anything
    free = offsets.clone()
    free[0, :, 0, 0] = 9.0
    assert float(centre_offset_loss(free, offsets, weight)) == 0.0


def test_the_step_trains_the_pixel_features_through_the_head():
    model = build_model("tiny", seed=0).train()
    vocabulary = list(class_names())
    head = CentreOffsetHead(model.config.decoder.hidden_dim)
    assert not head.project.weight.detach().any()  # starts at zero offsets
    torch.nn.init.normal_(head.project.weight, std=0.1)  # as a head that has learned something
    runner = StepRunner(model, vocabulary, LossWeights(centre_offset=10.0), centre_offset=head)
    sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=3, mix=SMALL_MIX)
    losses = runner(sampler.sample())
    assert float(losses["centre_offset"].detach()) > 0
    losses["centre_offset"].backward()
    assert head.project.weight.grad is not None and head.project.weight.grad.abs().sum() > 0
    pixel_decoder_grads = [p.grad for p in model.pixel_decoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in pixel_decoder_grads)
    # without the weight the loss is not there
    plain = StepRunner(model, vocabulary)(sampler.sample())
    assert "centre_offset" not in plain


def test_a_weight_without_a_head_is_refused():
    model = build_model("tiny", seed=0)
    with pytest.raises(ValueError, match="CentreOffsetHead"):
        StepRunner(model, list(class_names()), LossWeights(centre_offset=1.0))


def test_trainer_checkpoints_the_head_but_never_ships_it(tmp_path):
    config = short_run(tmp_path, centre_offset_weight=10.0)
    trainer = Trainer(config)
    trainer.train(steps=1)
    assert trainer.centre_offset is not None
    resumed = Trainer(config)
    assert resumed.step == 1 and resumed.centre_offset is not None
    for a, b in zip(
        trainer.centre_offset.state_dict().values(), resumed.centre_offset.state_dict().values()
    ):
        assert torch.equal(a, b)
    resumed.train()
    with safe_open(str(tmp_path / "run" / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert names and not any("centre" in name for name in names)
    assert set(names) == set(build_model("tiny", seed=0).state_dict())


def test_a_negative_weight_is_refused():
    with pytest.raises(ValueError, match="centre_offset_weight"):
        TrainConfig(centre_offset_weight=-1.0)


def test_the_centres_recipe_loads_with_the_task_on():
    recipe = Path(__file__).resolve().parents[1] / "config" / "train_tiny_centres.yaml"
    config = TrainConfig.load(recipe)
    assert config.centre_offset_weight > 0 and config.mix.twin_click_rate > 0
    assert config.init_from == "checkpoints/tiny_stage12/seem_tiny_demo.safetensors"
