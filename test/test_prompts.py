"""Prompt validation: every malformed prompt raises a PromptError that says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    MemoryPrompt,
    ObjectPrompt,
    Points,
    PromptError,
    PromptSet,
    ReferenceRegion,
    ReferringText,
    Scribble,
    as_prompt_set,
)

HW = (100, 200)


def test_class_names_parse_splits_on_semicolons_and_commas():
    assert ClassNames.parse("mug; person, door handle").names == ("mug", "person", "door handle")


def test_class_names_drop_duplicates_case_insensitively():
    assert ClassNames(("Mug", "mug", "cup")).names == ("Mug", "cup")


@pytest.mark.parametrize("text", ["", " ; ;", ";"])
def test_empty_class_string_is_rejected(text):
    with pytest.raises(PromptError, match="class name"):
        ClassNames.parse(text)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_referring_text_is_rejected(text):
    with pytest.raises(PromptError, match="empty"):
        ReferringText(text)


def test_overlong_text_is_rejected():
    with pytest.raises(PromptError, match="limit"):
        ReferringText("mug " * 200)


def test_referring_text_normalises_whitespace():
    assert ReferringText("  the  red\nmug ").text == "the red mug"


@pytest.mark.parametrize("coords", [[[np.nan, 3.0]], [[1.0, np.inf]]])
def test_non_finite_click_is_rejected(coords):
    with pytest.raises(PromptError, match="finite"):
        Points(np.array(coords), np.array([1]))


@pytest.mark.parametrize("xy", [(-1.0, 5.0), (201.0, 5.0), (5.0, 100.5)])
def test_click_outside_the_image_is_rejected(xy):
    with pytest.raises(PromptError, match="outside"):
        Points.single(*xy).validate(HW)


def test_click_on_the_image_border_is_accepted():
    Points.single(200.0, 100.0).validate(HW)


def test_click_labels_must_be_zero_or_one():
    with pytest.raises(PromptError, match="labels"):
        Points(np.array([[1.0, 1.0]]), np.array([2]))


def test_click_label_count_must_match():
    with pytest.raises(PromptError, match="labels"):
        Points(np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([1]))


def test_points_need_xy_pairs():
    with pytest.raises(PromptError, match=r"\(N, 2\)"):
        Points(np.array([[1.0, 2.0, 3.0]]), np.array([1]))


@pytest.mark.parametrize("box", [(10, 10, 10, 50), (10, 10, 50, 10), (50, 10, 10, 60)])
def test_degenerate_box_is_rejected(box):
    with pytest.raises(PromptError, match="degenerate"):
        Box(*box)


def test_box_outside_the_image_is_rejected():
    with pytest.raises(PromptError, match="outside"):
        Box(10, 10, 300, 50).validate(HW)


def test_nan_box_is_rejected():
    with pytest.raises(PromptError, match="finite"):
        Box(np.nan, 0, 10, 10)


def test_scribble_outside_the_image_is_rejected():
    with pytest.raises(PromptError, match="outside"):
        Scribble(np.array([[1, 1], [500, 5]])).validate(HW)


def test_mask_of_wrong_shape_is_rejected():
    with pytest.raises(PromptError, match="image is 200x100"):
        MaskPrompt(np.ones((50, 50), bool)).validate(HW)


def test_mask_of_wrong_dtype_is_rejected():
    with pytest.raises(PromptError, match="dtype"):
        MaskPrompt(np.ones(HW, np.float32))


def test_mask_with_non_binary_values_is_rejected():
    with pytest.raises(PromptError, match="0/1 or 0/255"):
        MaskPrompt(np.full(HW, 7, np.uint8))


def test_empty_mask_is_rejected():
    with pytest.raises(PromptError, match="empty"):
        MaskPrompt(np.zeros(HW, bool))


def test_uint8_255_mask_is_accepted_as_binary():
    mask = np.zeros(HW, np.uint8)
    mask[10:20, 10:20] = 255
    assert MaskPrompt(mask).mask.sum() == 100


def test_reference_region_needs_an_rgb_uint8_image():
    with pytest.raises(PromptError, match="HxWx3 uint8"):
        ReferenceRegion(np.zeros((20, 20), np.uint8), np.ones((20, 20), bool))


def test_reference_region_mask_must_match_its_image():
    with pytest.raises(PromptError, match="does not match"):
        ReferenceRegion(np.zeros((20, 20, 3), np.uint8), np.ones((10, 10), bool))


def test_memory_prompt_needs_a_bool_mask():
    with pytest.raises(PromptError, match="bool"):
        MemoryPrompt(np.ones(HW, np.uint8))


def test_object_prompt_needs_something():
    with pytest.raises(PromptError, match="at least one"):
        ObjectPrompt()


def test_object_prompt_accepts_plain_text():
    assert ObjectPrompt(text="the red mug").text == ReferringText("the red mug")


def test_prompt_set_reports_which_object_is_wrong():
    prompts = PromptSet(
        objects=[ObjectPrompt(points=Points.single(1, 1)), ObjectPrompt(box=Box(0, 0, 500, 10))]
    )
    with pytest.raises(PromptError, match="object 1"):
        prompts.validate(HW)


def test_single_prompts_become_one_object_each():
    prompt_set = as_prompt_set(
        [ClassNames(("mug",)), Points.single(1, 1), ReferringText("the mug")]
    )
    assert prompt_set.classes.names == ("mug",)
    assert len(prompt_set.objects) == 2


def test_two_class_name_prompts_are_rejected():
    with pytest.raises(PromptError, match="only one ClassNames"):
        as_prompt_set([ClassNames(("a",)), ClassNames(("b",))])


def test_unknown_prompt_type_is_rejected():
    with pytest.raises(PromptError, match="unsupported"):
        as_prompt_set(["mug"])
