"""The official SEEM v1 architecture: key layout, the deterministic prompt rules, and the
decoder's attention rules as invariants (objects independent, padding inert, generic results
untouched by prompts), through the real Segmenter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from official_models import noise_image, small_official_segmenter

from seem_ros.model.config import load_config
from seem_ros.model.official.manifest import load_manifest, random_official_state_dict
from seem_ros.model.official.prompt_tensors import memory_slot_owners, strided_pixels
from seem_ros.model.official.seem_v1 import OfficialSEEM
from seem_ros.official_prompts import build_official_prompt_tensors, prompt_masks
from seem_ros.prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    MemoryPrompt,
    ObjectPrompt,
    Points,
    ReferringText,
    Scribble,
)
from seem_ros.segmenter import Segmenter
from seem_ros.tracking import Tracker
from seem_ros.transforms import ResizeTransform


@pytest.fixture(scope="module")
def segmenter():
    return small_official_segmenter()


@pytest.fixture(scope="module")
def image():
    return noise_image(64, 96)


def click(x: float, y: float, positive: bool = True) -> Points:
    return Points(np.array([[x, y]]), np.array([int(positive)]))


# ---------------------------------------------------------------------------- layout
@pytest.mark.parametrize("config", ["seem_focalt_v1", "seem_focall_v1"])
def test_official_configs_have_exactly_the_checkpoint_keys_and_shapes(config):
    with torch.device("meta"):
        model = OfficialSEEM(load_config(config))
    state = model.state_dict()
    manifest = load_manifest(config)
    expected = {k: e.shape for k, e in manifest.entries.items() if k != "criterion.empty_weight"}
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_random_official_weights_load_strictly_and_encode():
    state = random_official_state_dict("seem_focalt_v1", include_training_keys=False)
    model = OfficialSEEM.from_state_dict(load_config("seem_focalt_v1"), state)
    with torch.inference_mode():
        features = model.encode(torch.rand(1, 3, 64, 96) * 255)
    assert [tuple(f.shape) for f in features] == [
        (1, 512, 16, 24),
        (1, 512, 2, 3),
        (1, 512, 4, 6),
        (1, 512, 8, 12),
        *[(3, 1, 8, cells, 64) for cells in (6, 6, 24, 24, 96, 96)],  # per-level keys, values
        *[(1, 512, h, w) for h, w in ((2, 3), (4, 6), (8, 12))],  # mask features per level
        *[(1, 512, h, w) for h, w in ((2, 3), (4, 6), (8, 12))],  # spatial-token maps
    ]
    assert all(torch.isfinite(f).all() for f in features)


# ---------------------------------------------------------------------------- rules
def test_prompt_pixels_are_all_pixels_up_to_the_limit_then_evenly_strided():
    mask = np.zeros((40, 40), bool)
    mask[5:8, 10:13] = True
    assert strided_pixels(mask, 512).tolist() == np.argwhere(mask).tolist()
    big = np.ones((40, 40), bool)  # 1600 pixels
    picked = strided_pixels(big, 512)
    expected = np.argwhere(big)[(np.arange(512) * 1600) // 512]
    assert picked.tolist() == expected.tolist()


def test_memory_slot_i_belongs_to_object_i_times_c_over_slots():
    assert memory_slot_owners(32, 1).tolist() == [0] * 32
    assert memory_slot_owners(32, 3).tolist() == [(i * 3) // 32 for i in range(32)]
    assert np.bincount(memory_slot_owners(32, 3)).tolist() == [11, 11, 10]


def test_a_click_is_its_pixel_dilated_3x3_and_a_scribble_a_one_pixel_polyline():
    transform = ResizeTransform(64, 64, 64, fit="shortest", divisor=32)
    obj = ObjectPrompt(points=Points(np.array([[10.0, 20.0], [0.0, 0.0]]), np.array([1, 0])))
    positive, negative = prompt_masks(obj, transform)
    assert np.argwhere(positive).tolist() == [[r, c] for r in (19, 20, 21) for c in (9, 10, 11)]
    assert np.argwhere(negative).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    line = ObjectPrompt(scribbles=(Scribble(np.array([[5.0, 5.0], [15.0, 5.0]])),))
    positive, _ = prompt_masks(line, transform)
    assert np.argwhere(positive).tolist() == [[5, c] for c in range(5, 16)]


def test_a_box_is_its_filled_rectangle_on_the_input():
    transform = ResizeTransform(64, 64, 64, fit="shortest", divisor=32)
    positive, negative = prompt_masks(ObjectPrompt(box=Box(10, 20, 30, 25)), transform)
    assert positive.sum() == 20 * 5 and positive[20:25, 10:30].all() and not negative.any()


def test_inputs_keep_the_aspect_with_the_short_side_at_size_and_pad_to_32():
    transform = ResizeTransform(480, 640, 512, fit="shortest", divisor=32)
    assert transform.resized_hw == (512, 683)
    assert transform.input_hw == (512, 704)
    assert ResizeTransform(512, 512, 512, fit="shortest", divisor=32).input_hw == (512, 512)


def test_padding_is_the_pixel_mean_so_it_is_zero_after_normalisation():
    mean = (123.675, 116.28, 103.53)
    transform = ResizeTransform(48, 40, 40, fit="shortest", divisor=32, pad_value=mean)
    data = transform.image_to_input(np.zeros((48, 40, 3), np.uint8))
    assert data.shape == (3, 64, 64)
    assert np.allclose(data[:, :, 40:], np.array(mean)[:, None, None])
    assert np.allclose(data[:, 48:, :], np.array(mean)[:, None, None])


# ---------------------------------------------------------------------------- decoder rules
def test_every_prompt_type_gives_a_mask_of_the_image_and_memory_for_the_next_round(
    segmenter, image
):
    mask = np.zeros(image.shape[:2], bool)
    mask[10:30, 20:50] = True
    prompts = [
        ObjectPrompt(points=click(30, 20)),
        ObjectPrompt(points=Points(np.array([[30.0, 20.0], [70.0, 40.0]]), np.array([1, 0]))),
        ObjectPrompt(box=Box(10, 10, 50, 40)),
        ObjectPrompt(scribbles=(Scribble(np.array([[10.0, 10.0], [40.0, 30.0]])),)),
        ObjectPrompt(mask=MaskPrompt(mask)),
        ObjectPrompt(text=ReferringText("the red mug")),
        ObjectPrompt(text=ReferringText("the mug"), points=click(30, 20)),
    ]
    result = segmenter.segment(image, prompts)
    assert len(result.instances) == len(prompts)
    for instance in result.instances:
        assert instance.mask.shape == image.shape[:2]
        assert instance.memory.tokens.shape == (16, 24)  # logits on the 1/4 grid of 64x96
    second = segmenter.segment(
        image, ObjectPrompt(points=click(30, 20), memory=result.instances[0].memory)
    )
    assert second.instances[0].mask.shape == image.shape[:2]


def _decode(segmenter, image, objects):
    encoded = segmenter.encode_image(image)
    tensors = build_official_prompt_tensors(
        objects,
        encoded.transform,
        segmenter.layout,
        embed_phrase=segmenter.phrase_embedding,
    )
    return segmenter.engine.decode(encoded.features, tensors), tensors


def test_objects_decoded_together_equal_objects_decoded_alone(segmenter, image):
    a = ObjectPrompt(points=click(30, 20))
    b = ObjectPrompt(text=ReferringText("a green bottle"))
    c = ObjectPrompt(
        points=click(85, 50),
        scribbles=(Scribble(np.array([[60.0, 10.0], [80.0, 50.0]]), False),),
    )
    together, _ = _decode(segmenter, image, [a, b, c])
    for index, obj in enumerate([a, b, c]):
        alone, _ = _decode(segmenter, image, [obj])
        np.testing.assert_allclose(
            together["group_masks"][0, index], alone["group_masks"][0, 0], atol=1e-4
        )


def test_generic_outputs_do_not_depend_on_prompts(segmenter, image):
    with_prompts, _ = _decode(segmenter, image, [ObjectPrompt(points=click(30, 20))])
    without, _ = _decode(segmenter, image, [])
    np.testing.assert_allclose(with_prompts["object_masks"], without["object_masks"], atol=1e-5)
    np.testing.assert_allclose(with_prompts["object_embeds"], without["object_embeds"], atol=1e-5)


def test_memory_slots_are_shared_by_the_objects_that_carry_memory(segmenter, image):
    first = segmenter.segment(
        image, [ObjectPrompt(points=click(30, 20)), ObjectPrompt(points=click(70, 40))]
    )
    memories = [instance.memory for instance in first.instances]
    objects = [ObjectPrompt(points=click(30, 20), memory=m) for m in memories]
    _, tensors = _decode(segmenter, image, objects)
    owners = memory_slot_owners(8, 2)
    assert tensors.memory_slots[0, 0].tolist() == (owners == 0).astype(float).tolist()
    assert tensors.memory_slots[0, 1].tolist() == (owners == 1).astype(float).tolist()
    # another object's memory never changes this object's answer
    changed = dataclasses.replace(memories[1], tokens=-memories[1].tokens)
    base, _ = _decode(segmenter, image, objects)
    other, _ = _decode(
        segmenter, image, [objects[0], dataclasses.replace(objects[1], memory=changed)]
    )
    np.testing.assert_allclose(base["group_masks"][0, 0], other["group_masks"][0, 0], atol=1e-5)


def test_attention_masks_at_level_size_equal_resized_full_masks(segmenter, image):
    """The decoder predicts each layer's attention masks on mask features resized to the level;
    the official code resizes full-resolution masks. Resizing is linear, so they agree."""
    encoded = segmenter.encode_image(image)
    mask_features = torch.from_numpy(encoded.features[0])
    predictor = segmenter.model.predictor
    queries = predictor.query_feat.weight[None]
    _, embeds = predictor.heads(queries)
    full = torch.einsum("bqc,bchw->bqhw", embeds, mask_features)
    for size in [(2, 4), (4, 8), (8, 16)]:
        official = F.interpolate(full, size=size, mode="bilinear", align_corners=False)
        official = official.sigmoid().flatten(2) >= 0.5
        resized = F.interpolate(mask_features, size=size, mode="bilinear", align_corners=False)
        ours = predictor._attention_masks(queries, resized)
        assert (ours == official).float().mean() > 0.999


def test_semantic_with_the_133_coco_names_runs(segmenter, image):
    from seem_ros.model.official.vocabulary import COCO_PANOPTIC_CLASSES

    result = segmenter.segment(image, ClassNames(COCO_PANOPTIC_CLASSES), task="semantic")
    assert result.semantic.shape == image.shape[:2]
    assert result.semantic.max() < len(COCO_PANOPTIC_CLASSES)
    assert segmenter.class_embeddings(list(COCO_PANOPTIC_CLASSES)).shape == (134, 32)


def test_text_embeddings_are_single_sentences_and_class_names_use_templates(segmenter):
    single = segmenter.text_embeddings(["mug"])
    classes = segmenter.class_embeddings(["mug"])
    assert np.allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)
    assert classes.shape == (2, 32)  # mug + background
    assert not np.allclose(single[0], classes[0], atol=1e-3)


def test_official_models_keep_their_own_masks_by_default(segmenter):
    assert segmenter.negative_click_cut is False
    assert segmenter.object_continuity is False
    assert segmenter.phrase_grounding is False
    with pytest.raises(ValueError, match="official ones ground their way"):
        Segmenter(segmenter.model, segmenter.card, phrase_grounding=True)


def test_tracking_with_memory_follows_a_clicked_object_across_frames(segmenter, image):
    tracker = Tracker(segmenter, min_score=0.0, min_area=0)
    track_id = tracker.add_object(ObjectPrompt(points=click(30, 20)))
    shifted = np.roll(image, 3, axis=1)
    first = tracker.step(image)
    second = tracker.step(shifted)
    assert track_id in tracker.tracks
    assert first.instances and second.instances is not None


def test_a_memory_made_from_a_mask_alone_is_accepted(segmenter, image):
    mask = np.zeros(image.shape[:2], bool)
    mask[10:30, 20:50] = True
    result = segmenter.segment(image, ObjectPrompt(memory=MemoryPrompt(mask=mask)))
    assert result.instances[0].mask.shape == image.shape[:2]


@pytest.mark.parametrize(
    ("transform", "grid"),
    [
        (ResizeTransform(480, 640, 512, fit="shortest", divisor=32), (128, 176)),
        (ResizeTransform(512, 512, 512, fit="shortest", divisor=32), (128, 128)),
        (ResizeTransform(480, 640, 256), (64, 64)),
    ],
)
def test_upsampling_matrices_reproduce_logits_to_image(transform, grid):
    logits = np.random.default_rng(0).normal(size=(3, *grid)).astype(np.float32) * 5
    rows, cols = transform.upsampling_matrices(grid)
    banded = np.einsum("yh,qhw,xw->qyx", rows, logits, cols)
    np.testing.assert_allclose(banded, transform.logits_to_image(logits), atol=1e-4)


def test_semantic_follows_the_official_order_sigmoid_after_resizing(segmenter, image):
    """argmax_c sum_q softmax(class)[q, c] * sigmoid(resized mask_q), computed naively."""
    classes = ["mug", "person", "wall"]
    result = segmenter.segment(image, ClassNames(tuple(classes)), task="semantic")
    encoded = segmenter.encode_image(image)
    outputs = segmenter.engine.decode(
        encoded.features,
        build_official_prompt_tensors(
            [], encoded.transform, segmenter.layout, embed_phrase=segmenter.phrase_embedding
        ),
    )
    logits = segmenter.classify(outputs["object_embeds"][0], classes)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    masks = 1 / (1 + np.exp(-encoded.transform.logits_to_image(outputs["object_masks"][0])))
    expected = np.einsum("qc,qhw->chw", probs[:, :-1], masks).argmax(0)
    assert (result.semantic == expected).mean() > 0.999


@pytest.mark.parametrize(
    ("config", "frame_hw", "input_hw"),
    [
        ("seem_focalt_v1", (480, 640), (512, 704)),
        ("seem_samvitb_v1", (480, 640), (1024, 1024)),
        ("seem_samvitb_v1", (1000, 500), (1024, 1024)),
    ],
)
def test_each_official_backbone_gets_its_upstream_input(config, frame_hw, input_hw):
    from seem_ros.transforms import model_input_transform

    transform = model_input_transform(load_config(config), *frame_hw)
    assert transform.input_hw == input_hw
    assert max(transform.resized_hw) == 1024 or min(transform.resized_hw) == 512


@pytest.mark.parametrize(("size_in", "size_out"), [(683, 640), (128, 512), (100, 37), (37, 100)])
def test_cubic_resize_matrix_is_torch_bicubic_with_antialiasing(size_in, size_out):
    from seem_ros.transforms import cubic_antialias_resize_matrix

    signal = torch.randn(1, 1, 1, size_in, dtype=torch.float64)
    expected = F.interpolate(
        signal, size=(1, size_out), mode="bicubic", align_corners=False, antialias=True
    )[0, 0, 0].numpy()
    np.testing.assert_allclose(
        cubic_antialias_resize_matrix(size_in, size_out) @ signal[0, 0, 0].numpy(),
        expected,
        atol=1e-9,
    )


def test_official_post_processing_matches_the_upstream_sequence():
    """bilinear to the padded input, crop to the resized image, bicubic (antialiased) to the
    original size: the official sem_seg_postprocess, replayed with torch."""
    transform = ResizeTransform(120, 170, 64, fit="shortest", divisor=32)
    logits = torch.randn(2, 32, 48) * 4  # the 1/4 grid of the (128, 192) input
    up = F.interpolate(logits[None], size=transform.input_hw, mode="bilinear", align_corners=False)
    up = up[..., : transform.resized_hw[0], : transform.resized_hw[1]]
    expected = F.interpolate(
        up, size=(120, 170), mode="bicubic", align_corners=False, antialias=True
    )[0].numpy()
    ours = transform.logits_to_image_official(logits.numpy())
    np.testing.assert_allclose(ours, expected, atol=1e-4)
