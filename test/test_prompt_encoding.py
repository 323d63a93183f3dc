"""Prompt encoding: which visual prompts get the decoder's slots when there are too many."""

from __future__ import annotations

import numpy as np

from seem_ros.model.build import build_model
from seem_ros.prompt_encoding import PromptLayout, visual_slots
from seem_ros.prompts import Box, ObjectPrompt, Points
from seem_ros.transforms import ResizeTransform

TRANSFORM = ResizeTransform(256, 256, 256)
LAYOUT = PromptLayout.of(build_model("tiny", seed=0))


def clicks(labels: list[int]) -> Points:
    xs = np.arange(len(labels), dtype=float) * 10 + 5
    return Points(np.stack([xs, xs], axis=1), np.array(labels))


def x_of(slot) -> float:
    return float(slot.coords[0, 0] * 256)


def test_overflowing_clicks_keep_the_first_positive_and_the_newest():
    # 2 negative clicks, the anchoring positive one, then 9 corrections
    labels = [0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    slots = visual_slots(ObjectPrompt(points=clicks(labels)), TRANSFORM, LAYOUT, limit=4)
    assert [s.kind for s in slots] == ["point"] * 4
    assert x_of(slots[0]) == 25 and slots[0].positive  # the anchor, click 2
    assert [x_of(s) for s in slots[1:]] == [95, 105, 115]  # the three newest


def test_clicks_that_fit_keep_their_order():
    slots = visual_slots(ObjectPrompt(points=clicks([1, 0, 1])), TRANSFORM, LAYOUT, limit=4)
    assert [x_of(s) for s in slots] == [5, 15, 25]


def test_boxes_come_first_and_clicks_share_the_rest():
    prompt = ObjectPrompt(box=Box(10, 10, 100, 100), points=clicks([1, 0, 0, 0, 0]))
    slots = visual_slots(prompt, TRANSFORM, LAYOUT, limit=3)
    assert [s.kind for s in slots] == ["box", "point", "point"]
    assert [x_of(s) for s in slots[1:]] == [5, 45]


def test_without_a_positive_click_the_newest_are_kept():
    slots = visual_slots(ObjectPrompt(points=clicks([0] * 6)), TRANSFORM, LAYOUT, limit=2)
    assert [x_of(s) for s in slots] == [45, 55]
