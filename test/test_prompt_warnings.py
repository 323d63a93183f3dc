"""Prompts that are valid but cannot say which object is meant warn, saying why."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from seem_ros.prompts import (
    Box,
    MemoryPrompt,
    ObjectPrompt,
    Points,
    PromptWarning,
    Scribble,
)

NEGATIVE_CLICK = Points.single(10, 10, positive=False)
NEGATIVE_SCRIBBLE = Scribble(np.array([[1.0, 1.0], [9.0, 9.0]]), positive=False)


@pytest.mark.parametrize(
    "parts",
    [
        {"points": NEGATIVE_CLICK},
        {"points": Points(np.array([[1, 1], [5, 5]]), np.array([0, 0]))},
        {"scribbles": (NEGATIVE_SCRIBBLE,)},
        {"points": NEGATIVE_CLICK, "scribbles": (NEGATIVE_SCRIBBLE,)},
    ],
)
def test_only_negative_clicks_or_scribbles_warn(parts):
    with pytest.warns(PromptWarning, match="nothing saying what it is"):
        prompt = ObjectPrompt(**parts)
    assert prompt.only_negative


@pytest.mark.parametrize(
    "parts",
    [
        {"points": Points(np.array([[1, 1], [5, 5]]), np.array([1, 0]))},
        {"points": NEGATIVE_CLICK, "text": "the red mug"},
        {"points": NEGATIVE_CLICK, "box": Box(0, 0, 20, 20)},
        # a refinement round: the negative click corrects the object's previous mask
        {"points": NEGATIVE_CLICK, "memory": MemoryPrompt(np.ones((20, 20), bool))},
        {"scribbles": (NEGATIVE_SCRIBBLE, Scribble(np.array([[2.0, 2.0], [4.0, 4.0]])))},
    ],
)
def test_a_negative_prompt_with_anything_positive_is_silent(parts):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PromptWarning)
        assert not ObjectPrompt(**parts).only_negative


def test_the_warning_points_at_the_callers_line():
    with pytest.warns(PromptWarning) as record:
        ObjectPrompt(points=NEGATIVE_CLICK)
    assert record[0].filename == __file__
