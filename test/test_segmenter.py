"""The user API end to end on a random-init tiny model: every prompt, every task, any image size."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    ObjectPrompt,
    Points,
    PromptError,
    PromptSet,
    ReferenceRegion,
    ReferringText,
    Scribble,
)
from seem_ros.segmenter import ImageError


def square_mask(hw, y0, y1, x0, x1):
    mask = np.zeros(hw, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def every_prompt(image):
    hw = image.shape[:2]
    return {
        "text": ReferringText("the red circle"),
        "points": Points(np.array([[80.0, 90.0], [200.0, 80.0]]), np.array([1, 0])),
        "box": Box(40, 50, 120, 130),
        "scribble": Scribble(np.array([[170, 50], [200, 90], [250, 120]])),
        "mask": MaskPrompt(square_mask(hw, 40, 130, 170, 260)),
        "reference": ReferenceRegion(image, square_mask(hw, 150, 220, 60, 140)),
    }


@pytest.mark.parametrize("kind", ["text", "points", "box", "scribble", "mask", "reference"])
def test_each_prompt_type_gives_one_mask_of_the_image_size(tiny_segmenter, scene_image, kind):
    result = tiny_segmenter.segment(scene_image, every_prompt(scene_image)[kind])
    assert len(result.instances) == 1
    instance = result.instances[0]
    assert instance.mask.shape == scene_image.shape[:2] and instance.mask.dtype == bool
    assert instance.source == "prompt" and 0.0 <= instance.score <= 1.0
    assert (
        result.instance_ids.shape == scene_image.shape[:2]
        and result.instance_ids.dtype == np.uint16
    )


def test_all_prompts_composed_for_one_object(tiny_segmenter, scene_image):
    parts = every_prompt(scene_image)
    composed = ObjectPrompt(
        text=parts["text"],
        points=parts["points"],
        box=parts["box"],
        scribbles=(parts["scribble"],),
        mask=parts["mask"],
        reference=parts["reference"],
        label="target",
    )
    result = tiny_segmenter.segment(scene_image, [ClassNames(("circle", "square")), composed])
    prompted = [i for i in result.instances if i.source == "prompt"]
    assert len(prompted) == 1 and prompted[0].label == "target"


def test_composition_differs_from_each_prompt_alone(tiny_segmenter, scene_image):
    text = ReferringText("the blue square")
    click = Points.single(200.0, 80.0)
    both = (
        tiny_segmenter.segment(scene_image, ObjectPrompt(text=text, points=click)).instances[0].mask
    )
    alone = tiny_segmenter.segment(scene_image, ObjectPrompt(points=click)).instances[0].mask
    assert not np.array_equal(both, alone)


@pytest.mark.parametrize("task", ["instance", "panoptic", "semantic"])
def test_generic_tasks_return_image_sized_outputs(tiny_segmenter, scene_image, task):
    result = tiny_segmenter.segment(
        scene_image, ClassNames(("circle", "square", "background")), task=task
    )
    assert result.instance_ids.shape == scene_image.shape[:2]
    if task == "semantic":
        assert result.semantic.shape == scene_image.shape[:2]
        assert set(np.unique(result.semantic)) <= {0, 1, 2}


def test_instance_ids_index_into_instances(tiny_segmenter, scene_image):
    result = tiny_segmenter.segment(scene_image, [Points.single(80, 90), Box(150, 30, 280, 140)])
    for index, instance in enumerate(result.instances, start=1):
        assert np.all(instance.mask[result.instance_ids == index])


def test_encode_once_decode_many_equals_one_call(tiny_segmenter, scene_image):
    prompt_sets = [Points.single(80, 90), Box(40, 50, 120, 130), ReferringText("the circle")]
    encoded = tiny_segmenter.encode_image(scene_image)
    for prompts in prompt_sets:
        reused = tiny_segmenter.decode(encoded, prompts).instances[0]
        fresh = tiny_segmenter.segment(scene_image, prompts).instances[0]
        assert np.array_equal(reused.mask, fresh.mask)
        assert reused.score == pytest.approx(fresh.score, abs=1e-6)


def test_objects_together_equal_objects_alone(tiny_segmenter, scene_image):
    a, b = Points.single(80, 90), Box(150, 30, 280, 140)
    together = tiny_segmenter.segment(scene_image, [a, b]).instances
    assert np.array_equal(
        together[0].mask, tiny_segmenter.segment(scene_image, a).instances[0].mask
    )
    assert np.array_equal(
        together[1].mask, tiny_segmenter.segment(scene_image, b).instances[0].mask
    )


def test_memory_is_returned_and_accepted_next_round(tiny_segmenter, scene_image):
    first = tiny_segmenter.segment(scene_image, Points.single(80, 90)).instances[0]
    assert first.memory.tokens.shape == (2, 64)
    second = tiny_segmenter.segment(
        scene_image,
        ObjectPrompt(
            points=Points(np.array([[80, 90], [100, 100]]), np.array([1, 0])), memory=first.memory
        ),
    )
    assert second.instances[0].mask.shape == scene_image.shape[:2]


def test_memory_from_a_differently_sized_frame_is_resized(tiny_segmenter, scene_image):
    first = tiny_segmenter.segment(scene_image, Points.single(80, 90)).instances[0]
    bigger = np.repeat(np.repeat(scene_image, 2, axis=0), 2, axis=1)
    result = tiny_segmenter.segment(bigger, ObjectPrompt(memory=first.memory))
    assert result.instances[0].mask.shape == bigger.shape[:2]


@pytest.mark.parametrize("hw", [(17, 300), (480, 640), (1080, 1920), (256, 256)])
def test_any_image_size_round_trips(tiny_segmenter, hw):
    image = np.random.default_rng(0).integers(0, 255, (*hw, 3), dtype=np.uint8)
    result = tiny_segmenter.segment(image, Points.single(hw[1] / 2, hw[0] / 2))
    assert result.instances[0].mask.shape == hw


def test_grey_and_rgba_images_are_accepted(tiny_segmenter, scene_image):
    grey = scene_image[..., 0]
    rgba = np.concatenate(
        [scene_image, np.full((*scene_image.shape[:2], 1), 255, np.uint8)], axis=2
    )
    assert tiny_segmenter.segment(grey, Points.single(5, 5)).instance_ids.shape == grey.shape
    assert tiny_segmenter.segment(rgba, Points.single(5, 5)).instance_ids.shape == grey.shape


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "HxWx3"),
        (np.zeros((9000, 9000, 3), np.uint8), "exceeds"),
    ],
)
def test_bad_images_raise_image_error(tiny_segmenter, image, message):
    with pytest.raises(ImageError, match=message):
        tiny_segmenter.segment(image, Points.single(1, 1))


def test_prompt_outside_the_image_raises_before_any_work(tiny_segmenter, scene_image):
    with pytest.raises(PromptError, match="outside"):
        tiny_segmenter.segment(scene_image, Points.single(1000, 5))


def test_no_prompt_and_no_vocabulary_is_a_prompt_error(tiny_segmenter, scene_image):
    with pytest.raises(PromptError, match="nothing to segment"):
        tiny_segmenter.segment(scene_image, PromptSet())


def test_one_pixel_mask_prompt_on_a_huge_image_is_still_sampled_where_it_is():
    from seem_ros.prompt_encoding import mask_samples
    from seem_ros.transforms import ResizeTransform

    transform = ResizeTransform(2000, 2000, 256)
    coverage = transform.mask_to_grid(square_mask((2000, 2000), 1000, 1001, 500, 501), 64)
    coords, valid = mask_samples(coverage, 16)
    assert valid.sum() >= 1
    assert coords[0] == pytest.approx([0.25, 0.5], abs=0.02)


def test_text_embeddings_are_cached(tiny_segmenter):
    first = tiny_segmenter.text_embeddings(["a cached phrase"])
    assert "a cached phrase" in tiny_segmenter._text_cache
    assert np.array_equal(first, tiny_segmenter.text_embeddings(["a cached phrase"]))


def test_result_serialises_to_json(tiny_segmenter, scene_image):
    import json

    data = tiny_segmenter.segment(
        scene_image, [ClassNames(("circle",)), Points.single(80, 90)]
    ).to_dict()
    text = json.dumps(data)
    assert '"instances"' in text and data["image_size"] == {"height": 240, "width": 320}


def test_a_reference_region_is_encoded_once_across_decodes(scene_image):
    from seem_ros.engine.torch_engine import TorchEngine
    from seem_ros.segmenter import Segmenter

    class CountingEngine(TorchEngine):
        encodes = 0

        def encode(self, image):
            CountingEngine.encodes += 1
            return super().encode(image)

    base = Segmenter.from_config("tiny", seed=0)
    segmenter = Segmenter(base.model, base.card, engine=CountingEngine(base.model))
    region = ReferenceRegion(scene_image, square_mask(scene_image.shape[:2], 150, 220, 60, 140))
    encoded = segmenter.encode_image(scene_image)
    for _ in range(3):
        segmenter.decode(encoded, ObjectPrompt(reference=region))
    assert CountingEngine.encodes == 2  # the frame once, the reference image once


@pytest.mark.parametrize(("hw", "target"), [((480, 640), (192, 256)), ((301, 777), (99, 256))])
def test_downscale_matches_the_area_filter_on_camera_sized_frames(hw, target):
    """The fast shrink averages the same footprint as OpenCV's area filter."""
    import cv2

    from seem_ros.transforms import downscale

    rng = np.random.default_rng(0)
    noise = (rng.random((*hw, 3)) * 255).astype(np.uint8)
    smooth = cv2.GaussianBlur(noise, (0, 0), 4)
    for image in (smooth, smooth[..., 0]):
        fast = downscale(image, target[1], target[0]).astype(np.float32)
        area = cv2.resize(image, target[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
        assert fast.shape == area.shape
        assert np.abs(fast - area).mean() < 0.5
    # and it still anti-aliases: a one-pixel checkerboard shrinks to flat grey, not stripes
    checker = ((np.indices(hw).sum(0) % 2) * 255).astype(np.uint8)
    assert downscale(checker, target[1], target[0]).std() < 20
