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
    keep_parts_at,
    keep_parts_near,
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


def test_a_followed_object_keeps_the_parts_within_the_margin_of_its_previous_mask():
    previous = np.zeros((48, 64), dtype=bool)  # a mask from a frame at a tenth of the size
    previous[20:28, 20:24] = True  # rows 200..279, columns 200..239 at full size
    margin = FOLLOW_MARGIN * 640  # 12.8 px
    mask = np.zeros((480, 640), dtype=bool)
    mask[190:290, 205:240] = True  # the object, moved a little
    mask[200:280, 246:265] = True  # a part 7 px from the previous mask: within the margin
    mask[200:280, 239 + round(3 * margin) : 400] = True  # a part beyond it
    kept = keep_parts_near(mask, previous)
    assert kept[190:290, 205:240].all() and kept[200:280, 246:265].all()
    assert not kept[:, 265:].any()
    assert not (kept & ~mask).any()
    assert keep_parts_near(mask, np.zeros((48, 64), dtype=bool)) is mask
    elsewhere = np.zeros((48, 64), dtype=bool)
    elsewhere[0:4, 60:64] = True  # the object seen last far away: no part is near
    assert keep_parts_near(mask, elsewhere) is mask
    one_part = np.zeros((480, 640), dtype=bool)
    one_part[10:20, 10:20] = True
    assert keep_parts_near(one_part, previous) is one_part


def test_parts_of_a_large_frame_are_kept_or_dropped_at_full_size():
    mask = np.zeros((720, 1280), dtype=bool)
    mask[100:200, 100:200] = True
    mask[100:200, 240:300] = True
    mask[150, 300:1000] = True  # a 1-px line joins a third part to the second
    mask[100:200, 1000:1100] = True
    anchor = np.zeros_like(mask)
    anchor[150, 150] = True
    kept = keep_parts_at(mask, anchor)
    assert kept[100:200, 100:200].all() and kept.sum() == 100 * 100
    anchor[120, 1050] = True  # the joined part is one part with the second
    kept = keep_parts_at(mask, anchor)
    assert np.array_equal(kept, mask)


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
