"""Overlays, looked at as images: whole labels that do not overlap, prompts drawn where they
were given, translucent fills that stand out from the object, sizes that follow the image."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import pytest

from seem_ros.prompts import Box, ObjectPrompt, Points, PromptSet, PromptWarning, Scribble
from seem_ros.results import Instance, SegmentationResult, paint_instance_ids
from seem_ros.visualize import (
    CANDIDATE_COLOURS,
    FILL_ALPHA,
    LABEL_BACKGROUND,
    MIN_HUE_DIFFERENCE,
    NEGATIVE_CLICK,
    POSITIVE_CLICK,
    Style,
    draw_overlay,
    instance_text,
    put_caption,
)

GREY = 128
BACKDROP = (90, 140, 60)  # not neutral grey, so label pixels (neutral) stand out


def grey(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def backdrop(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), BACKDROP, np.uint8)


def result_of(masks: list[np.ndarray], labels: list[str], source: str = "generic"):
    instances = [
        Instance(
            mask=m,
            label=label,
            score=0.87,
            source=source,
            object_index=i if source == "prompt" else None,
        )
        for i, (m, label) in enumerate(zip(masks, labels))
    ]
    hw = masks[0].shape
    return SegmentationResult(instances, paint_instance_ids(instances, hw), "instance")


def square(hw: tuple[int, int], x0: int, y0: int, side: int) -> np.ndarray:
    mask = np.zeros(hw, bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def label_boxes(overlay: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of each label (without its colour stripe), found in the image itself: the
    labels are the only neutral (R = G = B) pixels on a ``backdrop`` with coloured instances,
    and each label has some of its dark background."""
    neutral = (overlay[..., 0] == overlay[..., 1]) & (overlay[..., 1] == overlay[..., 2])
    count, labels, stats, _ = cv2.connectedComponentsWithStats(neutral.astype(np.uint8), 8)
    background = np.all(overlay == np.array(LABEL_BACKGROUND, np.uint8), axis=-1)
    return [
        tuple(int(v) for v in stats[i, :4])
        for i in range(1, count)
        if background[labels == i].any()
    ]


def clustered(hw: tuple[int, int], count: int, side: int) -> SegmentationResult:
    """``count`` squares packed against the top-right corner: labels must move to fit."""
    width = hw[1]
    masks = [
        square(hw, width - side * (1 + i % 3), (i // 3) * side, side - 1) for i in range(count)
    ]
    return result_of(masks, [f"a long class name {i}" for i in range(count)])


@pytest.mark.parametrize(("hw", "side"), [((256, 256), 20), ((3000, 4000), 240)])
def test_labels_are_whole_inside_the_image_and_do_not_overlap(hw, side):
    result = clustered(hw, 9, side)
    overlay = draw_overlay(backdrop(*hw), result)
    boxes = label_boxes(overlay)
    # every label is there, as its own box (touching or overlapping ones would merge or hide)
    assert len(boxes) == 9
    style = Style.for_image(*hw)
    want_w, want_h = style.label_size(instance_text(result.instances[0]))
    stripe = max(1, style.pad // 2)
    for x, y, w, h in boxes:
        assert x >= 0 and y >= 0 and x + w <= hw[1] and y + h <= hw[0]
        # whole: not cut by the image edge (the colour stripe is the label's first columns)
        assert (w + stripe, h) == (want_w, want_h)


def test_text_and_lines_scale_with_the_image():
    small, large = Style.for_image(256, 256), Style.for_image(3000, 4000)
    assert small.label_size("circle 0.97")[1] >= 12  # readable on a 256 px image
    assert small.label_size("circle 0.97")[0] < 256 / 2
    assert large.label_size("circle 0.97")[1] >= 0.015 * 3000  # readable at 4000x3000
    assert large.line >= 5 * small.line and large.marker >= 5 * small.marker


def test_fill_is_translucent_and_contrasts_with_the_object():
    hw = (200, 200)
    image = grey(*hw)
    mask = square(hw, 40, 40, 100)
    object_colour = CANDIDATE_COLOURS[0]  # what the first instance would be tinted with
    image[mask] = object_colour
    overlay = draw_overlay(image, result_of([mask], ["thing"]), show_labels=False)
    inside = overlay[90, 90].astype(np.float64)
    assert not np.array_equal(inside, image[90, 90])
    fill = (inside - (1 - FILL_ALPHA) * image[90, 90]) / FILL_ALPHA
    # the fill is one palette colour, blended with the image at FILL_ALPHA
    assert np.abs(CANDIDATE_COLOURS.astype(np.float64) - fill).max(axis=1).min() <= 3
    hue = lambda rgb: colorsys.rgb_to_hsv(*(np.clip(rgb, 0, 255) / 255.0))[0]  # noqa: E731
    difference = abs(hue(fill) - hue(object_colour.astype(np.float64))) % 1.0
    assert min(difference, 1 - difference) >= MIN_HUE_DIFFERENCE
    assert np.array_equal(overlay[10, 10], image[10, 10])  # outside: untouched
    # the outline is opaque (up to anti-aliasing), on the mask's edge
    assert np.abs(overlay[90, 40].astype(int) - fill.astype(int)).max() <= 20


def test_clicks_are_drawn_at_their_pixel_positive_and_negative_apart():
    hw = (300, 400)
    clicks = Points(np.array([[100.5, 80.5], [300.5, 200.5]]), np.array([1, 0]))
    prompt = ObjectPrompt(points=clicks, label="mug")
    result = result_of([square(hw, 60, 40, 90)], ["mug"], source="prompt")
    overlay = draw_overlay(grey(*hw), result, prompts=prompt).astype(int)
    without = draw_overlay(grey(*hw), result).astype(int)
    style = Style.for_image(*hw)
    ring = style.marker - 1  # inside the disc, off the +/- glyph
    for (x, y), colour in ((clicks.coords[0], POSITIVE_CLICK), (clicks.coords[1], NEGATIVE_CLICK)):
        x, y = int(x), int(y)
        assert np.abs(overlay[y + ring - 1, x + ring // 2] - colour).max() <= 10
        assert overlay[y, x].min() >= 200  # the glyph's centre is white
        beyond = x + style.marker + style.line + 4
        assert np.array_equal(overlay[y, beyond], without[y, beyond])  # no bigger
    arm = style.marker * 3 // 5
    positive_top = overlay[80 - arm + 1, 100]
    negative_top = overlay[200 - arm + 1, 300]
    assert positive_top.min() >= 200  # "+": a vertical bar
    assert np.abs(negative_top - NEGATIVE_CLICK).max() <= 10  # "-": none


def test_boxes_are_dashed_and_scribbles_drawn_along_their_stroke():
    hw = (240, 320)
    box = ObjectPrompt(box=Box(40, 30, 200, 150))
    with pytest.warns(PromptWarning, match="only negative"):
        scribble = ObjectPrompt(
            scribbles=(Scribble(np.array([[220.0, 200.0], [300.0, 200.0]]), positive=False),)
        )
    result = SegmentationResult([], np.zeros(hw, np.uint16), "instance")
    overlay = draw_overlay(grey(*hw), result, prompts=PromptSet(objects=[box, scribble]))
    top_edge = np.any(overlay[30, 40:200] != GREY, axis=-1)
    assert 0.3 < top_edge.mean() < 0.8  # dashes, with gaps
    assert np.abs(overlay[200, 260].astype(int) - NEGATIVE_CLICK).max() <= 10
    assert np.array_equal(overlay[100, 120], [GREY] * 3)  # the box is not filled


def test_a_prompted_object_not_found_gets_a_label_saying_so():
    hw = (256, 256)
    result = result_of([np.zeros(hw, bool)], ["the red mug"], source="prompt")
    assert instance_text(result.instances[0]) == "the red mug: not found"
    overlay = draw_overlay(backdrop(*hw), result, prompts=ObjectPrompt(text="the red mug"))
    (box,) = label_boxes(overlay)
    style = Style.for_image(*hw)
    assert box[2] + max(1, style.pad // 2) == style.label_size("the red mug: not found")[0]


def test_a_label_wider_than_the_image_is_shortened_to_fit():
    hw = (64, 64)
    result = result_of([square(hw, 10, 10, 30)], ["an extremely long referring phrase"])
    (box,) = label_boxes(draw_overlay(backdrop(*hw), result))
    assert box[0] + box[2] <= 64


def test_a_caption_strip_goes_below_the_image():
    tile = grey(256, 256)
    captioned = put_caption(tile, 'scene 0, refer: "the small red star"')
    assert captioned.shape[0] > 256 and captioned.shape[1] == 256
    assert np.array_equal(captioned[:256], tile)
    strip = captioned[256:]
    assert (strip < 100).any() and (strip == 255).mean() > 0.5  # dark text on white


@pytest.mark.parametrize(
    "object_rgb", [(240, 200, 30), (255, 63, 63), (40, 90, 230), (30, 200, 40), (200, 60, 200)]
)
def test_the_fill_colour_is_a_different_hue_from_any_saturated_object(object_rgb):
    from seem_ros.visualize import contrasting_colour

    for key in range(len(CANDIDATE_COLOURS)):
        fill = contrasting_colour(key, np.array(object_rgb, np.float32))
        a = colorsys.rgb_to_hsv(*(c / 255 for c in fill))[0]
        b = colorsys.rgb_to_hsv(*(c / 255 for c in object_rgb))[0]
        assert min(abs(a - b), 1 - abs(a - b)) >= MIN_HUE_DIFFERENCE, (key, fill)


def test_a_track_keeps_its_colour_while_its_object_looks_the_same():
    from seem_ros.visualize import contrasting_colour

    grey_object = np.array([120.0, 120.0, 120.0])
    colours = [contrasting_colour(key, grey_object) for key in range(6)]
    assert len(set(colours)) == 6  # distinct keys, distinct colours
    assert colours == [contrasting_colour(key, grey_object) for key in range(6)]
