"""Specification of the simulated-click protocol for interactive segmentation."""

import numpy as np
import pytest
from scipy import ndimage

from seem_ros.eval import Click, next_click, number_of_clicks, simulate_clicks


def box(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def component_at(mask: np.ndarray, click: Click) -> np.ndarray:
    """The connected component of ``mask`` under ``click`` (empty if the click misses it)."""
    labels, _ = ndimage.label(mask)
    label = labels[int(click.y), int(click.x)]
    return labels == label if label else np.zeros_like(mask)


def oracle_predictor(gt: np.ndarray, first_guess: np.ndarray | None = None):
    """A perfect region grower: positive clicks add the gt component under them, negative
    clicks erase the predicted component under them. ``first_guess`` seeds the first round."""

    def predict(clicks: list[Click], previous: np.ndarray | None) -> np.ndarray:
        if previous is None:
            previous = np.zeros_like(gt) if first_guess is None else first_guess
        click = clicks[-1]
        if click.positive:
            return previous | component_at(gt, click)
        return previous & ~component_at(previous, click)

    return predict


# --------------------------------------------------------------------------- next_click


def test_first_click_on_even_square_lands_on_its_centre():
    gt = box((40, 40), slice(10, 30), slice(10, 30))  # centre at (19.5, 19.5)
    click = next_click(np.zeros_like(gt), gt)
    assert click.positive
    assert abs(click.x - 19.5) == 0.5
    assert abs(click.y - 19.5) == 0.5


def test_first_click_on_odd_square_lands_exactly_on_its_centre():
    gt = box((40, 40), slice(10, 31), slice(10, 31))
    assert next_click(np.zeros_like(gt), gt) == Click(x=20.0, y=20.0, positive=True)


def test_false_positive_blob_gets_a_negative_click_at_its_centre():
    gt = box((40, 40), slice(10, 20), slice(10, 20))
    pred = gt | box((40, 40), slice(30, 37), slice(30, 37))
    assert next_click(pred, gt) == Click(x=33.0, y=33.0, positive=False)


def test_larger_error_region_wins_over_smaller_one():
    gt = box((40, 40), slice(10, 30), slice(10, 30))
    pred = box((40, 40), slice(10, 30), slice(20, 30))  # misses a 20x10 strip
    pred |= box((40, 40), slice(33, 36), slice(33, 36))  # small 3x3 false positive
    click = next_click(pred, gt)
    assert click.positive
    assert 10 <= click.x < 20 and 10 <= click.y < 30


def test_exact_prediction_needs_no_click():
    gt = box((10, 10), slice(2, 6), slice(2, 6))
    assert next_click(gt.copy(), gt) is None


def test_padding_keeps_clicks_off_the_image_border():
    gt = box((10, 12), slice(0, 10), slice(0, 6))  # touches the top, left and bottom edges
    padded = next_click(np.zeros_like(gt), gt, pad=True)
    unpadded = next_click(np.zeros_like(gt), gt, pad=False)
    assert 0 < padded.x < 5 and 0 < padded.y < 9
    assert unpadded.x == 0.0


def test_next_click_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        next_click(np.zeros((4, 4), bool), np.ones((4, 5), bool))


# --------------------------------------------------------------------------- simulate_clicks


def test_simulation_clicks_each_missing_part_then_pads_with_final_iou():
    gt = box((30, 30), slice(2, 8), slice(2, 8)) | box((30, 30), slice(20, 24), slice(20, 24))
    ious = simulate_clicks(oracle_predictor(gt), gt, max_clicks=5)
    # The larger square (36 px) is clicked first, the smaller one (16 px) second.
    assert ious == pytest.approx([36 / 52, 1.0, 1.0, 1.0, 1.0])
    assert number_of_clicks(ious, 0.9) == 2


def test_predictor_gets_all_clicks_and_the_previous_mask():
    gt = box((30, 30), slice(2, 8), slice(2, 8)) | box((30, 30), slice(20, 24), slice(20, 24))
    oracle = oracle_predictor(gt)
    calls: list[tuple[list[Click], np.ndarray | None, np.ndarray]] = []

    def recording_predict(clicks, previous):
        mask = oracle(clicks, previous)
        calls.append((clicks, previous, mask))
        return mask

    simulate_clicks(recording_predict, gt, max_clicks=5)
    assert len(calls) == 2
    (first_clicks, first_previous, first_mask), (second_clicks, second_previous, _) = calls
    assert first_previous is None
    assert len(first_clicks) == 1 and len(second_clicks) == 2
    assert second_clicks[0] == first_clicks[0]
    assert np.array_equal(second_previous, first_mask)


def test_simulation_places_negative_click_on_false_positive():
    gt = box((30, 30), slice(2, 8), slice(2, 8))
    spurious = box((30, 30), slice(15, 25), slice(15, 25))
    clicks_seen: list[Click] = []
    oracle = oracle_predictor(gt, first_guess=spurious)

    def predict(clicks, previous):
        clicks_seen.append(clicks[-1])
        return oracle(clicks, previous)

    ious = simulate_clicks(predict, gt, max_clicks=3)
    assert [click.positive for click in clicks_seen] == [True, False]
    assert ious == pytest.approx([36 / 136, 1.0, 1.0])


def test_simulation_stops_at_stop_iou_and_pads():
    gt = box((10, 10), slice(0, 4), slice(0, 4))
    three_quarters = box((10, 10), slice(0, 3), slice(0, 4))  # IoU 12 / 16
    calls = []

    def predict(clicks, previous):
        calls.append(len(clicks))
        return three_quarters

    ious = simulate_clicks(predict, gt, max_clicks=4, stop_iou=0.7)
    assert calls == [1]
    assert ious == pytest.approx([0.75] * 4)


def test_simulation_runs_max_clicks_rounds_when_iou_stays_low():
    gt = box((10, 10), slice(2, 6), slice(2, 6))
    calls = []

    def predict(clicks, previous):
        calls.append(len(clicks))
        return np.zeros_like(gt)

    ious = simulate_clicks(predict, gt, max_clicks=6)
    assert calls == [1, 2, 3, 4, 5, 6]
    assert ious == [0.0] * 6
    assert number_of_clicks(ious, 0.85, max_clicks=6) == 6


def test_simulation_rejects_predictions_of_the_wrong_shape():
    gt = box((10, 10), slice(2, 6), slice(2, 6))
    with pytest.raises(ValueError, match="predict returned shape"):
        simulate_clicks(lambda clicks, previous: np.zeros((5, 5), bool), gt)


def test_simulation_rejects_empty_ground_truth():
    with pytest.raises(ValueError, match="empty"):
        simulate_clicks(lambda clicks, previous: np.zeros((5, 5), bool), np.zeros((5, 5), bool))
