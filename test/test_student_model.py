"""The shipped distilled student: it loads, its card says what taught it, it beats random weights
widely, and it answers open-vocabulary prompts through its teacher's frozen text tower."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shipped_model_scores import trained_and_random_scores

from seem_ros.model.build import load_model

REPO = Path(__file__).resolve().parent.parent
STUDENT = REPO / "models" / "seem_nano_student.safetensors"
TEACHER = REPO / "checkpoints" / "tiny_stage6" / "seem_tiny_demo.safetensors"


@pytest.fixture(scope="module")
def scores():
    # a student is measured on its teacher's frames
    return trained_and_random_scores(
        STUDENT, ("interactive", "referring", "generic"), frame_size=256
    )


def test_the_student_is_small_and_its_card_names_its_teacher():
    assert STUDENT.stat().st_size < 3 * 1024 * 1024
    _, card = load_model(STUDENT)
    teacher_card = json.loads(TEACHER.with_suffix(".json").read_text())
    teacher = card.provenance["distilled_from"]
    assert teacher["sha256"] == teacher_card["weights_sha256"]
    assert card.trained and card.vocabulary == teacher_card["vocabulary"]
    assert card.config.name == "student_nano" and card.config.image_size == 160
    assert card.metrics["generic.pq"] > 0 and card.provenance["shards"]["frames"] > 0


@pytest.mark.parametrize(
    "metric, margin",
    [("interactive.miou_1click", 0.5), ("referring.miou", 0.1), ("generic.miou", 0.4)],
)
def test_the_student_beats_random_weights(scores, metric, margin):
    trained, random = scores
    assert trained[metric] >= random[metric] + margin, (metric, trained[metric], random[metric])
