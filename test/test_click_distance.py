"""The click-distance head (seem_ros/model/click_distance.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from seem_ros.model.build import build_model, load_into, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.click_distance import NO_CLICK_DISTANCE, OUTPUT_SCALE, ClickDistance
from seem_ros.model.config import DecoderConfig, load_config
from seem_ros.prompt_encoding import PromptLayout, build_prompt_tensors
from seem_ros.prompts import ObjectPrompt, Points
from seem_ros.transforms import ResizeTransform

POINT, BOX = (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0)


def _prompts(clicks: list[tuple[float, float, bool]], kind=POINT, samples: int = 4):
    """One object's prompt tensors: each click (x, y in [0, 1], positive) as its own prompt."""
    count = len(clicks)
    coords = torch.zeros(1, 1, count, samples, 2)
    sample_valid = torch.zeros(1, 1, count, samples)
    for index, (x, y, _) in enumerate(clicks):
        coords[0, 0, index, 0] = torch.tensor([x, y])
        sample_valid[0, 0, index, 0] = 1.0
    kinds = torch.tensor(kind).expand(1, 1, count, 4).clone()
    positive = torch.tensor([[[float(p) for _, _, p in clicks]]])
    return coords, sample_valid, kinds, positive, torch.ones(1, 1, count)


class _Recorder(ClickDistance):
    """Keeps the features the MLP sees."""

    def __init__(self) -> None:
        super().__init__(hidden=4)
        self.seen: torch.Tensor | None = None
        original = self.mlp.forward

        def record(features: torch.Tensor) -> torch.Tensor:
            self.seen = features
            return original(features)

        self.mlp.forward = record  # type: ignore[method-assign]


def test_a_fresh_head_corrects_nothing():
    head = ClickDistance(hidden=8)
    logits = torch.randn(1, 1, 8, 12)
    correction = head(logits, *_prompts([(0.2, 0.3, True), (0.8, 0.5, False)]))
    assert correction.shape == logits.shape
    assert not correction.any()


def test_distances_are_in_short_sides_of_the_grid_and_clicks_only():
    head = _Recorder()
    logits = torch.zeros(1, 1, 20, 40)  # a 1:2 grid: x spans two short sides
    head(logits, *_prompts([(0.025, 0.05, True), (0.975, 0.05, False)]))
    features = head.seen[0, 0]
    assert features.shape[:2] == (10, 20)  # the MLP runs at half the grid
    # pixel (row 0, column 0) is the positive click's own cell centre
    assert features[0, 0, 1] == pytest.approx(0.0, abs=1e-6)
    # ... and 19 cells (1.9 short sides) from the negative click
    assert features[0, 0, 2] == pytest.approx(1.9, abs=1e-5)
    assert features[0, 0, 3] == pytest.approx(np.log(0.01 / 1.91), abs=1e-4)
    assert (features[..., 4] == 1).all() and (features[..., 5] == 1).all()
    # a box is a region, not a click: no sites at all
    head(logits, *_prompts([(0.5, 0.5, True)], kind=BOX))
    features = head.seen[0, 0]
    assert torch.allclose(features[..., 1], torch.full((10, 20), NO_CLICK_DISTANCE))
    assert not features[..., 3:].any()


def test_only_positive_clicks_give_no_ratio():
    head = _Recorder()
    head(torch.zeros(1, 1, 6, 6), *_prompts([(0.5, 0.5, True)]))
    features = head.seen[0, 0]
    assert (features[..., 4] == 1).all() and (features[..., 5] == 0).all()
    assert not features[..., 3].any()
    assert torch.allclose(features[..., 2], torch.full((3, 3), NO_CLICK_DISTANCE))


def test_the_correction_is_computed_at_half_the_grid_and_upsampled():
    head = _Recorder()
    torch.nn.init.normal_(head.mlp[-1].weight, std=0.1)
    logits = torch.zeros(1, 1, 16, 24)
    logits[..., :8, :] = 4.0
    correction = head(logits, *_prompts([(0.25, 0.25, True), (0.75, 0.75, False)]))
    assert head.seen.shape[2:4] == (8, 12)
    assert torch.allclose(head.seen[0, 0, :4, :, 0], torch.tensor(0.4))  # the pooled logit / 10
    half = head.mlp(head.seen).squeeze(-1) * OUTPUT_SCALE
    expected = torch.nn.functional.interpolate(
        half, size=(16, 24), mode="bilinear", align_corners=False
    )
    assert correction.shape == logits.shape
    assert torch.allclose(correction, expected, atol=1e-5)


def test_weights_without_the_head_initialise_a_model_with_it(tmp_path):
    """Fine-tuning adds the head to older weights; it starts as a no-op, so the outputs are
    the older model's exactly."""
    tiny = load_config("tiny")
    without = replace(tiny, decoder=replace(tiny.decoder, click_distance_hidden=0))
    old = build_model(without, seed=3).eval()
    path = save_model(old, tmp_path / "old.safetensors", ModelCard(without))
    new = load_into("tiny", path).eval()
    assert new.decoder.click_distance is not None and old.decoder.click_distance is None
    image = torch.rand(1, 3, 256, 256) * 255
    clicks = Points(np.array([[77.0, 102.0], [154.0, 102.0]]), np.array([1, 0]))
    prompts = build_prompt_tensors(
        [ObjectPrompt(points=clicks)],
        ResizeTransform(256, 256, 256),
        PromptLayout.of(new),
        embed_text=lambda text: np.zeros(64, np.float32),
        embed_reference=lambda region: np.zeros(64, np.float32),
    ).to_torch()
    with torch.no_grad():
        a = old.decode(old.encode(image), prompts)["group_masks"]
        b = new.decode(new.encode(image), prompts)["group_masks"]
    assert torch.equal(a, b)


def test_the_width_must_not_be_negative():
    with pytest.raises(ValueError, match="click_distance_hidden"):
        DecoderConfig(click_distance_hidden=-1)
