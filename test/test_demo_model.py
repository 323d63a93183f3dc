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
