"""The shipped demo model: it loads, its card is complete, and it beats random weights widely."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped_model_scores import trained_and_random_scores

from seem_ros.model.build import load_model
from seem_ros.model_zoo import DEMO_MODEL_NAME

DEMO = Path(__file__).resolve().parent.parent / "models" / DEMO_MODEL_NAME


@pytest.fixture(scope="module")
def scores():
    return trained_and_random_scores(DEMO, ("interactive", "referring", "generic", "composition"))


def test_demo_model_file_is_small_and_its_card_is_complete():
    assert DEMO.stat().st_size < 6 * 1024 * 1024
    _, card = load_model(DEMO)
    assert card.trained and card.vocabulary and card.stuff_classes
    assert card.metrics["interactive.miou_1click"] > 0
    assert card.training["model"] == "tiny" and card.provenance["steps"] > 0


@pytest.mark.parametrize(
    "metric, margin",
    [
        ("interactive.miou_1click", 0.5),
        ("referring.miou", 0.1),
        ("generic.miou", 0.4),
        ("composition.miou", 0.4),
    ],
)
def test_demo_model_beats_random_weights(scores, metric, margin):
    trained, random = scores
    assert trained[metric] >= random[metric] + margin, (metric, trained[metric], random[metric])


def _negative_clicks_kept(segmenter, scenes: int) -> tuple[int, float]:
    """Simulated click rounds on val objects with the network's masks alone: how often the
    pixel under a negative click is still in the next mask."""
    import numpy as np

    from seem_ros.data import SceneDataset
    from seem_ros.eval.clicks import next_click
    from seem_ros.prompts import ObjectPrompt, Points

    kept = []
    dataset = SceneDataset("val", scenes, size=(256, 256))
    for index in range(scenes):
        scene = dataset[index]
        encoded = segmenter.encode_image(scene.image)
        for segment in sorted(scene.thing_segments, key=lambda s: -s.area)[:3]:
            clicks, previous, memory = [], np.zeros_like(segment.mask), None
            for _ in range(5):
                click = next_click(previous, segment.mask)
                if click is None:
                    break
                clicks.append(click)
                points = Points(
                    np.array([[c.x + 0.5, c.y + 0.5] for c in clicks]),
                    np.array([int(c.positive) for c in clicks]),
                )
                instance = segmenter.decode(
                    encoded, ObjectPrompt(points=points, memory=memory)
                ).instances[0]
                if not click.positive:
                    kept.append(bool(instance.mask[int(click.y), int(click.x)]))
                previous, memory = instance.mask, instance.memory
    return len(kept), float(np.mean(kept))


def test_the_network_itself_follows_negative_clicks_through_its_click_distance_head():
    """Without the segmenter's negative-click cut, the shipped network drops the pixel under a
    negative click from its next mask most of the time; the same weights without their
    click-distance head mostly keep it (val, 12 scenes: 0.25 vs 0.83 kept over 20 scenes)."""
    from seem_ros.segmenter import Segmenter

    segmenter = Segmenter.from_pretrained(DEMO, negative_click_cut=False)
    count, kept = _negative_clicks_kept(segmenter, scenes=12)
    assert count >= 40
    assert kept < 0.45
    segmenter.model.decoder.click_distance = None  # the same weights, tokens alone
    _, kept_without_head = _negative_clicks_kept(segmenter, scenes=12)
    assert kept_without_head > kept + 0.3
