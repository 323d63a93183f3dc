"""Official models prompted by a region of another image (the official "refimg" path): the
reference image's tokens replace the object's spatial tokens on the target image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from official_models import noise_image, small_official_segmenter

from seem_ros.engine.onnx_export import export_model
from seem_ros.engine.onnxruntime_engine import OnnxRuntimeEngine
from seem_ros.model.official.decoder import _DecoderState
from seem_ros.official_prompts import build_official_prompt_tensors, reference_pixels
from seem_ros.prompts import (
    MaskPrompt,
    ObjectPrompt,
    Points,
    PromptError,
    ReferenceRegion,
    ReferringText,
)
from seem_ros.segmenter import Segmenter
from seem_ros.tracking import Tracker


@pytest.fixture(scope="module")
def segmenter():
    return small_official_segmenter()


@pytest.fixture(scope="module")
def image():
    return noise_image(64, 96)


def region_mask(hw: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros(hw, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _tensors(segmenter: Segmenter, image: np.ndarray, objects: list[ObjectPrompt]):
    encoded = segmenter.encode_image(image)
    tensors = build_official_prompt_tensors(
        objects,
        encoded.transform,
        segmenter.layout,
        embed_phrase=segmenter.phrase_embedding,
        embed_reference=segmenter.official_reference,
    )
    return encoded, tensors


def _start_state(segmenter: Segmenter, encoded, tensors) -> _DecoderState:
    features = [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in encoded.features]
    prompts = tensors.to_torch()
    decoder = segmenter.model.predictor
    with torch.inference_mode():
        return _DecoderState.start(
            decoder,
            1,
            prompts.group_valid.shape[1],
            prompts,
            features[0],
            features[-3:],
        )


def test_a_reference_region_decodes_to_a_mask_of_the_target_image(segmenter, image):
    reference = noise_image(80, 120, seed=5)
    region = ReferenceRegion(reference, region_mask((80, 120), 20, 50, 30, 80))
    result = segmenter.segment(image, ObjectPrompt(reference=region))
    assert len(result.instances) == 1
    instance = result.instances[0]
    assert instance.mask.shape == image.shape[:2]
    assert instance.memory is not None and instance.memory.tokens is not None
    assert 0.0 <= instance.score <= 1.0


def test_the_builder_fills_the_reference_inputs(segmenter, image):
    reference = noise_image(80, 120, seed=5)
    region = ReferenceRegion(reference, region_mask((80, 120), 20, 50, 30, 80))
    objects = [ObjectPrompt(points=Points.single(30, 20)), ObjectPrompt(reference=region)]
    _, tensors = _tensors(segmenter, image, objects)
    pixels = reference_pixels(region, segmenter.transform_for(80, 120), segmenter.layout)
    # the mask prompt's 512 rule (24 here): all pixels when few, else an even stride
    assert len(pixels) == segmenter.layout.max_pixels
    assert tensors.ref_tokens.shape == (1, 2, 3, len(pixels), 32)
    np.testing.assert_array_equal(tensors.ref_valid[0], [0.0, 1.0])
    np.testing.assert_array_equal(tensors.ref_token_valid[0, 1], 1.0)
    assert not tensors.ref_token_valid[0, 0].any() and not tensors.spatial_valid[0, 1].any()


def test_a_reference_of_the_same_image_equals_the_mask_prompt_on_it(segmenter, image):
    mask = region_mask(image.shape[:2], 10, 40, 20, 60)
    region = ReferenceRegion(image, mask)
    as_mask = [ObjectPrompt(mask=MaskPrompt(mask))]
    as_reference = [ObjectPrompt(reference=region)]
    encoded, mask_tensors = _tensors(segmenter, image, as_mask)
    _, reference_tensors = _tensors(segmenter, image, as_reference)

    by_mask = _start_state(segmenter, encoded, mask_tensors)
    by_reference = _start_state(segmenter, encoded, reference_tensors)
    for level in range(3):
        mask_tokens = by_mask.level_tokens[level][by_mask.spatial_token_valid]
        reference_tokens = by_reference.level_tokens[level][by_reference.spatial_token_valid]
        np.testing.assert_allclose(reference_tokens, mask_tokens, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        by_reference.positive_mean, by_mask.positive_mean, rtol=1e-5, atol=1e-5
    )

    mask_out = segmenter.engine.decode(encoded.features, mask_tensors)
    reference_out = segmenter.engine.decode(encoded.features, reference_tensors)
    for name in ("group_masks", "group_embeds", "group_scores"):
        np.testing.assert_allclose(reference_out[name], mask_out[name], rtol=1e-4, atol=1e-4)
    a = segmenter.segment(image, as_mask).instances[0].mask
    b = segmenter.segment(image, as_reference).instances[0].mask
    assert (a == b).mean() >= 0.999


def test_a_reference_region_is_encoded_once_per_region_object(segmenter, image):
    region = ReferenceRegion(image, region_mask(image.shape[:2], 10, 40, 20, 60))
    first = segmenter.official_reference(region)
    assert segmenter.official_reference(region) is first
    assert first.tokens.shape[0] == 3 and first.positive_mean.shape == (32,)


def test_a_reference_with_visual_prompts_on_the_same_object_is_refused(segmenter, image):
    region = ReferenceRegion(image, region_mask(image.shape[:2], 10, 40, 20, 60))
    with pytest.raises(PromptError, match="reference region"):
        segmenter.segment(image, ObjectPrompt(reference=region, points=Points.single(5, 5)))


def test_the_builder_without_a_reference_embedder_refuses_reference_regions(segmenter, image):
    region = ReferenceRegion(image, region_mask(image.shape[:2], 10, 40, 20, 60))
    transform = segmenter.transform_for(*image.shape[:2])
    with pytest.raises(PromptError, match="reference regions"):
        build_official_prompt_tensors(
            [ObjectPrompt(reference=region)],
            transform,
            segmenter.layout,
            embed_phrase=segmenter.phrase_embedding,
        )


def test_the_tracker_keeps_and_uses_a_reference_for_official_tracks(segmenter, image):
    tracker = Tracker(segmenter, min_score=0.0, min_area=1)
    tracker.add_object(ObjectPrompt(text=ReferringText("the mug"), points=Points.single(30, 20)))
    first = tracker.step(image)
    assert first.instances and first.instances[0].mask.any()
    tracker.min_area = image.shape[0] * image.shape[1] + 1  # nothing counts as seen now
    tracker.step(np.roll(image, 3, axis=1))
    prompt = tracker.build_prompts().objects[0]
    assert prompt.reference is not None and prompt.text.text == "the mug"
    tracker.step(np.roll(image, 6, axis=1))  # decoded with its reference crop
    assert prompt.reference in segmenter._official_reference_cache


# ---------------------------------------------------------------------------- ONNX Runtime
@pytest.fixture(scope="module")
def export(segmenter, tmp_path_factory):
    folder = tmp_path_factory.mktemp("official_reference_export")
    return export_model(
        segmenter.model, segmenter.card, folder, group_counts=(2,), input_hw=(64, 96)
    )


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnxruntime_matches_pytorch_for_a_reference_prompt(segmenter, export, image, precision):
    engine = OnnxRuntimeEngine(export, precision=precision, providers=["CPUExecutionProvider"])
    floor = 0.99 if precision == "fp32" else 0.95
    ours = Segmenter(segmenter.model, segmenter.card, engine=engine)
    reference = noise_image(80, 120, seed=5)
    region = ReferenceRegion(reference, region_mask((80, 120), 20, 50, 30, 80))
    prompts = [ObjectPrompt(reference=region), ObjectPrompt(points=Points.single(30, 20))]
    expected = segmenter.segment(image, prompts)
    got = ours.segment(image, prompts)
    for a, b in zip(expected.instances, got.instances):
        assert _mask_iou(a.mask, b.mask) >= floor
    if precision == "fp16":
        return
    for a, b in zip(expected.instances, got.instances):
        assert abs(a.score - b.score) <= 1e-3
    encoded = segmenter.encode_image(image)
    _, tensors = _tensors(segmenter, image, prompts)
    want = segmenter.engine.decode(encoded.features, tensors)
    have = engine.decode(encoded.features, tensors)
    np.testing.assert_allclose(have["group_masks"], want["group_masks"], rtol=1e-3, atol=1e-3)
    # with memory from the first round, as a lost track is decoded
    again = [ObjectPrompt(reference=region, memory=got.instances[0].memory)]
    a = segmenter.segment(image, again).instances[0].mask
    b = ours.segment(image, again).instances[0].mask
    assert _mask_iou(a, b) >= 0.99
