"""Negative clicks that the mask must obey (seem_ros/click_constraints.py)."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.click_constraints import KEEP_RATIO, cut_by_negative_clicks
from seem_ros.prompts import ObjectPrompt, Points


def _two_touching_squares() -> np.ndarray:
    """A predicted mask that merged the target (left square) with its neighbour (right)."""
    mask = np.zeros((60, 100), dtype=bool)
    mask[10:50, 10:50] = True
    mask[10:50, 50:90] = True
    return mask


def test_a_negative_click_in_the_merged_neighbour_cuts_it_away():
    merged = _two_touching_squares()
    points = Points(np.array([[30.0, 30.0], [75.0, 30.0]]), np.array([1, 0]))
    kept = cut_by_negative_clicks(merged, points)
    assert kept[10:50, 10:50].all()  # the target, all of it
    assert not kept[10:50, 70:90].any()  # the far part of the neighbour
    assert not (kept & ~merged).any()  # never adds pixels
    # the split leans towards keeping: pixels midway between the clicks stay
    assert kept[30, 52]


def test_clicks_of_one_kind_or_no_clicks_change_nothing():
    merged = _two_touching_squares()
    only_positive = Points(np.array([[30.0, 30.0], [75.0, 30.0]]), np.array([1, 1]))
    only_negative = Points(np.array([[75.0, 30.0]]), np.array([0]))
    for points in (only_positive, only_negative, None):
        assert cut_by_negative_clicks(merged, points) is merged
    empty = np.zeros((8, 8), dtype=bool)
    assert not cut_by_negative_clicks(empty, only_positive).any()


def test_the_ratio_is_a_distance_ratio_and_at_least_one():
    mask = np.ones((1, 100), dtype=bool)
    points = Points(np.array([[10.0, 0.5], [60.0, 0.5]]), np.array([1, 0]))
    kept = cut_by_negative_clicks(mask, points, ratio=1.0)
    assert kept[0, :35].all() and not kept[0, 35:].any()  # plain Voronoi: cut at x = 35
    kept = cut_by_negative_clicks(mask, points)
    boundary = np.flatnonzero(~kept[0])[0] + 0.5  # first cut pixel centre
    # d_pos > ratio * d_neg  <=>  x - 10 > ratio * (60 - x)
    assert boundary - 10 > KEEP_RATIO * (60 - boundary)
    assert (boundary - 1) - 10 <= KEEP_RATIO * (60 - (boundary - 1))
    with pytest.raises(ValueError, match="at least 1"):
        cut_by_negative_clicks(mask, points, ratio=0.5)


def test_the_segmenter_cuts_its_prompted_masks_and_remembers_the_cut(tiny_segmenter, scene_image):
    """The segmenter's mask is the model's mask cut by the clicks, and the memory handed to
    the next round is that cut mask (what the user saw)."""
    points = Points(np.array([[80.0, 90.0], [215.0, 85.0], [100.0, 200.0]]), np.array([1, 0, 0]))
    prompt = ObjectPrompt(points=points)
    with tiny_segmenter.network_masks():
        model_mask = tiny_segmenter.segment(scene_image, prompt).instances[0].mask
        tiny_segmenter.negative_click_cut = True  # the cut alone
        instance = tiny_segmenter.segment(scene_image, prompt).instances[0]
    expected = cut_by_negative_clicks(model_mask, points)
    assert (expected != model_mask).any()  # this case does cut something
    assert np.array_equal(instance.mask, expected)
    assert instance.memory is not None and np.array_equal(instance.memory.mask, expected)
