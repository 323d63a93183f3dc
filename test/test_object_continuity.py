"""One object is one place (seem_ros/object_continuity.py), alone and in the segmenter."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seem_ros.model_zoo import DEMO_MODEL_NAME
from seem_ros.object_continuity import (
    FOLLOW_MARGIN,
    click_anchor,
    follow_anchor,
    keep_parts_at,
)
from seem_ros.prompts import Box, MemoryPrompt, ObjectPrompt, Points, ReferenceRegion
from seem_ros.segmenter import Segmenter

DEMO = Path(__file__).resolve().parent.parent / "models" / DEMO_MODEL_NAME
TWIN_COLOUR = (140, 40, 200)


def _three_parts() -> np.ndarray:
    mask = np.zeros((40, 100), dtype=bool)
    mask[5:15, 5:15] = True
    mask[5:15, 40:50] = True
    mask[25:35, 80:95] = True
    return mask


def test_only_the_anchored_parts_are_kept():
    mask = _three_parts()
    anchor = np.zeros_like(mask)
    anchor[10, 10] = anchor[30, 90] = True
    kept = keep_parts_at(mask, anchor)
    assert kept[5:15, 5:15].all() and kept[25:35, 80:95].all()
    assert not kept[5:15, 40:50].any()


def test_nothing_is_removed_without_an_anchored_part_or_a_second_part():
    mask = _three_parts()
    assert keep_parts_at(mask, np.zeros_like(mask)) is mask  # the anchor misses every part
    single = np.zeros_like(mask)
    single[5:15, 5:50] = True
    anchor = np.zeros_like(mask)
    anchor[0, 0] = True
    assert keep_parts_at(single, anchor) is single
    empty = np.zeros_like(mask)
    assert keep_parts_at(empty, anchor) is empty
    diagonal = np.eye(6, dtype=bool)  # one part, 8-connected
    corner = np.zeros_like(diagonal)
    corner[0, 0] = True
    assert keep_parts_at(diagonal, corner) is diagonal
    with pytest.raises(ValueError, match="differ in shape"):
        keep_parts_at(mask, anchor[:10])


def test_a_click_anchors_the_pixel_under_it_and_only_positive_clicks_do():
    points = Points(np.array([[10.5, 3.5], [99.9, 39.9], [50.0, 20.0]]), np.array([1, 1, 0]))
    anchor = click_anchor(points, (40, 100))
    assert anchor is not None
    assert anchor[3, 10] and anchor[39, 99] and anchor.sum() == 2
    edge = click_anchor(Points.single(100.0, 40.0), (40, 100))  # on the far border: clipped
    assert edge is not None and edge[39, 99]
    assert click_anchor(Points(np.array([[5.0, 5.0]]), np.array([0])), (40, 100)) is None
    assert click_anchor(None, (40, 100)) is None


def test_a_previous_mask_is_grown_by_the_margin_at_the_frame_size():
    previous = np.zeros((48, 64), dtype=bool)  # a mask from a frame at a quarter the size
    previous[20:28, 30:34] = True
    anchor = follow_anchor(previous, (480, 640))
    assert anchor is not None and anchor.shape == (480, 640)
    radius = round(FOLLOW_MARGIN * 640)
    rows = np.flatnonzero(anchor[:, 320])
    assert rows[0] == 200 - radius and rows[-1] == 279 + radius
    assert follow_anchor(np.zeros((48, 64), dtype=bool), (480, 640)) is None


# ------------------------------------------------------------------ in the segmenter
@pytest.fixture(scope="module")
def demo() -> Segmenter:
    return Segmenter.from_pretrained(DEMO)


def _twins(left_x: int, right_x: int) -> np.ndarray:
    """Two identical purple discs far apart on a plain wall."""
    image = np.full((240, 320, 3), (120, 110, 100), dtype=np.uint8)
    for x in (left_x, right_x):
        cv2.circle(image, (x, 120), 32, TWIN_COLOUR, -1)
    return image


def test_a_click_on_one_of_two_identical_objects_keeps_that_one(demo):
    image = _twins(70, 250)
    prompt = ObjectPrompt(points=Points.single(70.5, 120.5))
    with demo.network_masks():
        network = demo.segment(image, prompt).instances[0].mask
    instance = demo.segment(image, prompt).instances[0]
    # the demo model finds both discs by their look; the click says which one
    assert network[:, 160:].sum() > 1000, "the network no longer merges the twins"
    assert instance.mask[:, :160].sum() == network[:, :160].sum()
    assert not instance.mask[:, 160:].any()
    assert instance.memory is not None and np.array_equal(instance.memory.mask, instance.mask)
    assert demo.negative_click_cut and demo.object_continuity  # restored after the block


def test_a_followed_object_stays_where_it_was(demo):
    first = _twins(70, 250)
    clicked = demo.segment(first, ObjectPrompt(points=Points.single(70.5, 120.5))).instances[0]
    assert clicked.memory is not None
    reference = ReferenceRegion(first, clicked.mask)
    moved = _twins(78, 242)  # both discs moved a little towards each other
    follow = ObjectPrompt(memory=clicked.memory, reference=reference)
    with demo.network_masks():
        network = demo.segment(moved, follow).instances[0].mask
    followed = demo.segment(moved, follow).instances[0].mask
    assert network[:, 160:].any(), "the network no longer finds the twin"
    assert followed[:, :160].sum() == network[:, :160].sum()
    assert not followed[:, 160:].any()


def test_an_object_far_from_its_previous_mask_or_placed_by_a_box_is_left_as_found(demo):
    image = _twins(70, 250)
    elsewhere = np.zeros(image.shape[:2], dtype=bool)
    elsewhere[10:20, 150:170] = True  # hidden, then back somewhere else: no part touches this
    clicked = demo.segment(image, ObjectPrompt(points=Points.single(70.5, 120.5))).instances[0]
    assert clicked.memory is not None
    prompts = [
        ObjectPrompt(memory=MemoryPrompt(elsewhere, clicked.memory.tokens)),
        ObjectPrompt(box=Box(20, 70, 300, 170), memory=clicked.memory),
    ]
    for prompt in prompts:
        with demo.network_masks():
            network = demo.segment(image, prompt).instances[0].mask
        assert network[:, :160].any() and network[:, 160:].any()  # two parts to choose from
        assert np.array_equal(demo.segment(image, prompt).instances[0].mask, network)
