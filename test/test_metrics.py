"""Specification of the evaluation metrics, on arrays small enough to check by hand."""

import math

import numpy as np
import pytest

from seem_ros.eval import (
    IouAccumulator,
    JfAccumulator,
    PanopticAccumulator,
    SemanticAccumulator,
    boundary_f_measure,
    cumulative_iou,
    intersection_union,
    j_and_f,
    mask_iou,
    mean_iou,
    mean_noc,
    number_of_clicks,
    panoptic_quality,
    region_similarity_j,
    semantic_miou,
)


def box(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


# --------------------------------------------------------------------------- IoU


def test_intersection_union_counts_pixels():
    pred = np.array([[1, 1, 0, 0]], dtype=bool)
    gt = np.array([[0, 1, 1, 0]], dtype=bool)
    assert intersection_union(pred, gt) == (1, 3)


def test_mask_iou_is_intersection_over_union():
    pred = np.array([[1, 1, 0, 0]], dtype=bool)
    gt = np.array([[0, 1, 1, 0]], dtype=bool)
    assert mask_iou(pred, gt) == pytest.approx(1 / 3)


def test_mask_iou_of_two_empty_masks_is_one():
    empty = np.zeros((3, 3), dtype=bool)
    assert mask_iou(empty, empty) == 1.0


def test_mask_iou_accepts_zero_one_integer_masks():
    assert mask_iou(np.array([[1, 0]], dtype=np.uint8), np.array([[1, 1]])) == 0.5


def test_mask_iou_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        mask_iou(np.zeros((2, 3), bool), np.zeros((3, 2), bool))


def test_mask_iou_rejects_non_binary_values():
    with pytest.raises(ValueError, match="binary"):
        mask_iou(np.array([[0.0, 0.7]]), np.array([[0, 1]], dtype=bool))


def test_mask_iou_rejects_non_2d_arrays():
    with pytest.raises(ValueError, match="2-D"):
        mask_iou(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool))


def test_cumulative_iou_weighs_large_objects_more_than_mean_iou():
    accumulator = IouAccumulator()
    small = box((3, 3), slice(0, 1), slice(0, 1))
    accumulator.add(small, small)  # I=1, U=1
    accumulator.add(np.zeros((3, 3), bool), np.ones((3, 3), bool))  # I=0, U=9
    assert accumulator.count == 2
    assert accumulator.miou == pytest.approx(0.5)
    assert accumulator.ciou == pytest.approx(1 / 10)


def test_cumulative_iou_rejects_intersection_larger_than_union():
    with pytest.raises(ValueError, match="intersection <= union"):
        cumulative_iou([(5, 4)])


def test_mean_iou_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        mean_iou([])


# --------------------------------------------------------------------------- NoC


def test_number_of_clicks_is_first_click_reaching_threshold():
    ious = [0.5, 0.8, 0.86, 0.91]
    assert number_of_clicks(ious, 0.85) == 3
    assert number_of_clicks(ious, 0.90) == 4


def test_number_of_clicks_is_max_clicks_when_never_reached():
    assert number_of_clicks([0.5, 0.8, 0.86, 0.91], 0.95, max_clicks=20) == 20


def test_number_of_clicks_ignores_clicks_beyond_max_clicks():
    assert number_of_clicks([0.5, 0.8, 0.86], 0.85, max_clicks=2) == 2


def test_number_of_clicks_rejects_threshold_outside_unit_interval():
    with pytest.raises(ValueError, match="threshold"):
        number_of_clicks([0.5], 85)


def test_mean_noc_averages_over_objects():
    assert mean_noc([[0.9], [0.1, 0.95]], 0.9, max_clicks=5) == pytest.approx(1.5)


# --------------------------------------------------------------------------- panoptic quality


def test_panoptic_quality_accumulates_matches_across_images():
    accumulator = PanopticAccumulator()
    # Image 1: a 4-pixel cup predicted with 3 of its pixels -> a true positive with IoU 0.75.
    gt = np.zeros((4, 4), np.int32)
    gt[0:2, 0:2] = 1
    pred = gt.copy()
    pred[1, 1] = 0
    accumulator.add(pred * 7, {7: "cup"}, gt, {1: "cup"})
    # Image 2: the cup predicted one row too low, half on the cup and half on void. IoU with
    # void removed is 2 / 4, no match -> one false positive and one false negative.
    pred_elsewhere = np.zeros((4, 4), np.int32)
    pred_elsewhere[1:3, 0:2] = 2
    accumulator.add(pred_elsewhere, {2: "cup"}, gt, {1: "cup"})

    result = accumulator.compute()
    cup = result.per_category["cup"]
    assert (cup.tp, cup.fp, cup.fn) == (1, 1, 1)
    assert cup.sq == pytest.approx(0.75)
    assert cup.rq == pytest.approx(1 / (1 + 0.5 + 0.5))
    assert result.all.pq == pytest.approx(0.75 / (1 + 0.5 + 0.5))


def test_panoptic_iou_of_exactly_half_is_not_a_match():
    gt = np.zeros((2, 2), np.int32)
    gt[:, :] = 1
    pred = np.zeros((2, 2), np.int32)
    pred[0, :] = 1
    cup = panoptic_quality(pred, {1: "cup"}, gt, {1: "cup"}).per_category["cup"]
    assert (cup.tp, cup.fp, cup.fn) == (0, 1, 1)
    assert cup.pq == 0.0


def test_panoptic_segments_of_different_categories_never_match():
    ids = np.ones((2, 2), np.int32)
    result = panoptic_quality(ids, {1: "bowl"}, ids, {1: "cup"})
    assert result.per_category["cup"].fn == 1
    assert result.per_category["bowl"].fp == 1
    assert result.all.pq == 0.0
    assert result.all.num_categories == 2


def test_panoptic_void_pixels_are_removed_from_the_union():
    gt = np.zeros((2, 4), np.int32)
    gt[:, 0:2] = 1  # columns 2-3 are void (id 0)
    pred = np.full((2, 4), 5, np.int32)  # covers the cup and the void: plain IoU would be 0.5
    cup = panoptic_quality(pred, {5: "cup"}, gt, {1: "cup"}).per_category["cup"]
    assert cup.tp == 1
    assert cup.sq == pytest.approx(1.0)


def test_panoptic_prediction_lying_mostly_on_void_is_not_a_false_positive():
    gt = np.zeros((4, 4), np.int32)
    gt[0:2, 0:2] = 1
    pred = gt.copy()
    pred[2:4, 2:4] = 2  # a second cup entirely on void pixels
    cup = panoptic_quality(pred, {1: "cup", 2: "cup"}, gt, {1: "cup"}).per_category["cup"]
    assert (cup.tp, cup.fp, cup.fn) == (1, 0, 0)


def test_panoptic_custom_void_id():
    gt = np.full((2, 4), 255, np.int32)
    gt[:, 0:2] = 0  # id 0 is a real segment here
    pred = np.zeros((2, 4), np.int32)
    result = panoptic_quality(pred, {0: "cup"}, gt, {0: "cup"}, void_id=255)
    assert result.per_category["cup"].tp == 1


def test_panoptic_splits_things_and_stuff():
    gt = np.zeros((2, 4), np.int32)
    gt[:, 0:2] = 1  # cup (thing)
    gt[:, 2:4] = 2  # floor (stuff)
    pred = np.zeros((2, 4), np.int32)
    pred[:, 0:2] = 1  # the cup is exact; the floor is not predicted at all
    result = panoptic_quality(
        pred, {1: "cup"}, gt, {1: "cup", 2: "floor"}, thing_categories={"cup", "person"}
    )
    assert result.things.pq == pytest.approx(1.0)
    assert result.stuff.pq == pytest.approx(0.0)
    assert result.all.pq == pytest.approx(0.5)


def test_panoptic_averages_only_categories_that_appear():
    ids = np.ones((2, 2), np.int32)
    result = panoptic_quality(ids, {1: 3}, ids, {1: 3}, thing_categories=[3, 4])
    assert result.things.num_categories == 1
    assert result.stuff.num_categories == 0
    assert math.isnan(result.stuff.pq)


def test_panoptic_without_thing_categories_reports_only_all():
    ids = np.ones((2, 2), np.int32)
    result = panoptic_quality(ids, {1: 3}, ids, {1: 3})
    assert result.things is None and result.stuff is None


def test_panoptic_rejects_id_without_category():
    ids = np.ones((2, 2), np.int32)
    with pytest.raises(ValueError, match=r"pred id 1 .* has no category"):
        panoptic_quality(ids, {}, ids, {1: "cup"})


def test_panoptic_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        panoptic_quality(np.ones((2, 2), int), {1: 1}, np.ones((2, 3), int), {1: 1})


def test_panoptic_rejects_non_integer_id_maps():
    with pytest.raises(ValueError, match="integer"):
        panoptic_quality(np.ones((2, 2)), {1: 1}, np.ones((2, 2), int), {1: 1})


# --------------------------------------------------------------------------- semantic mIoU

SEMANTIC_GT = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
SEMANTIC_PRED = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])


def test_semantic_miou_from_confusion_matrix():
    # class 0: TP 1, union 3; class 1: TP 2, union 3; class 2: TP 1, union 2
    assert semantic_miou(SEMANTIC_PRED, SEMANTIC_GT, 3) == pytest.approx(
        (1 / 3 + 2 / 3 + 1 / 2) / 3
    )


def test_semantic_miou_skips_classes_absent_from_prediction_and_gt():
    accumulator = SemanticAccumulator(4)
    accumulator.add(SEMANTIC_PRED, SEMANTIC_GT)
    assert math.isnan(accumulator.per_class_iou()[3])
    assert accumulator.miou == pytest.approx(0.5)


def test_semantic_ignore_index_pixels_are_not_scored():
    accumulator = SemanticAccumulator(3, ignore_index=255)
    accumulator.add(SEMANTIC_PRED, SEMANTIC_GT)
    assert accumulator.confusion.sum() == 6
    assert accumulator.pixel_accuracy == pytest.approx(4 / 6)


def test_semantic_accumulates_over_images():
    accumulator = SemanticAccumulator(2)
    accumulator.add(np.array([[0, 0]]), np.array([[0, 1]]))
    accumulator.add(np.array([[1, 1]]), np.array([[1, 1]]))
    # class 0: TP 1, union 2; class 1: TP 2, union 3
    assert accumulator.miou == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_semantic_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"label 7 outside 0\.\.2"):
        semantic_miou(np.array([[7]]), np.array([[0]]), 3)


# --------------------------------------------------------------------------- video J and F


def test_region_similarity_is_iou_with_empty_pair_scoring_one():
    empty = np.zeros((4, 4), bool)
    assert region_similarity_j(empty, empty) == 1.0
    assert region_similarity_j(box((4, 4), slice(0, 2), slice(0, 2)), np.ones((4, 4), bool)) == 0.25


def test_boundary_f_of_identical_masks_is_one():
    mask = box((100, 100), slice(20, 30), slice(20, 30))
    assert boundary_f_measure(mask, mask) == 1.0


def test_boundary_f_tolerates_shift_within_tolerance():
    # 100x100 image: tolerance = ceil(0.008 * 141.4) = 2 pixels
    gt = box((100, 100), slice(20, 30), slice(20, 30))
    pred = box((100, 100), slice(20, 30), slice(21, 31))
    assert boundary_f_measure(pred, gt) == 1.0


def test_boundary_f_drops_for_shift_beyond_tolerance():
    # Shifted 5 px right: of each 36-pixel ring, 18 boundary pixels lie within 2 px of the other.
    gt = box((100, 100), slice(20, 30), slice(20, 30))
    pred = box((100, 100), slice(20, 30), slice(25, 35))
    assert boundary_f_measure(pred, gt) == pytest.approx(0.5)


def test_boundary_f_of_distant_masks_is_zero():
    gt = box((100, 100), slice(0, 10), slice(0, 10))
    pred = box((100, 100), slice(50, 60), slice(50, 60))
    assert boundary_f_measure(pred, gt) == 0.0


def test_boundary_f_with_one_empty_mask_is_zero_and_both_empty_is_one():
    empty = np.zeros((10, 10), bool)
    assert boundary_f_measure(empty, box((10, 10), slice(2, 5), slice(2, 5))) == 0.0
    assert boundary_f_measure(empty, empty) == 1.0


def test_boundary_f_rejects_threshold_outside_unit_interval():
    mask = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="bound_th"):
        boundary_f_measure(mask, mask, bound_th=2)


def test_j_and_f_averages_over_frames():
    gt = box((20, 20), slice(5, 15), slice(5, 15))
    empty = np.zeros_like(gt)
    scores = j_and_f([gt, empty], [gt, gt])  # one perfect frame, one missed frame
    assert scores == pytest.approx({"j": 0.5, "f": 0.5, "jf": 0.5})


def test_j_and_f_rejects_different_frame_counts():
    gt = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="frames"):
        j_and_f([gt], [gt, gt])


def test_jf_accumulator_averages_over_objects():
    gt = box((20, 20), slice(5, 15), slice(5, 15))
    accumulator = JfAccumulator()
    accumulator.add([gt, gt], [gt, gt])
    accumulator.add(np.zeros((2, 20, 20), bool), np.stack([gt, gt]))
    assert accumulator.count == 2
    assert accumulator.j == pytest.approx(0.5)
    assert accumulator.f == pytest.approx(0.5)
    assert accumulator.jf == pytest.approx(0.5)
