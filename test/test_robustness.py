"""Robustness variants of the benchmark (seem_ros.eval.robustness) and letterboxed frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seem_ros.cli import main
from seem_ros.eval.robustness import METRICS, VARIANTS, VariantWorld

pytest.importorskip("skimage", reason="the photo variant reads scikit-image's sample photos")


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory, tiny_segmenter):
    from seem_ros.model.build import save_model

    return save_model(
        tiny_segmenter.model,
        tmp_path_factory.mktemp("model") / "random.safetensors",
        tiny_segmenter.card,
    )


def test_eval_robustness_reports_every_metric_per_variant(tmp_path, random_model_path):
    out = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model",
            str(random_model_path),
            "--split",
            "val",
            "--sections",
            "referring",
            "--robustness",
            "--robustness-scenes",
            "1",
            "--robustness-clips",
            "1",
            "--clip-frames",
            "2",
            "--threads",
            "1",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    block = data["robustness"]
    assert block["scenes"] == 1 and block["clips"] == 1
    for variant in ("clean", *VARIANTS):
        assert set(block[variant]) >= set(METRICS), variant
        assert 0.0 <= block[variant]["miou_1click"] <= 1.0
    assert block["frame_640x480"]["frame_hw"] == [480, 640]
    assert set(block["drop"]) == set(VARIANTS) and set(block["max_drop"]) == set(VARIANTS)
    assert data["robustness.camera.pq"] == block["camera"]["pq"]


@pytest.mark.parametrize("variant", ["photo", "camera", "lighting"])
def test_pixel_variants_keep_the_ground_truth_and_change_the_pixels(variant):
    clean = VariantWorld("clean", "val", 256, 3)
    other = VariantWorld(variant, "val", 256, 3)
    a, b = clean.scene(0), other.scene(0)
    assert np.array_equal(a.segment_ids, b.segment_ids) and a.phrases == b.phrases
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 2
    clip_a, clip_b = clean.clip(0), other.clip(0)
    for fa, fb in zip(clip_a, clip_b):
        assert np.array_equal(fa.segment_ids, fb.segment_ids)
    assert other.scene(0).image.tobytes() == b.image.tobytes()  # seeded


def test_seed_and_frame_variants_render_other_scenes():
    clean = VariantWorld("clean", "test", 256, 2).scene(0)
    assert VariantWorld("seeds", "test", 256, 2).scene(0).seed != clean.seed
    wide = VariantWorld("frame_1280x720", "test", 256, 2)
    assert wide.scene(0).image.shape == (720, 1280, 3)
    assert wide.clip(0)[0].image.shape == (720, 1280, 3)


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="unknown variant"):
        VariantWorld("fog", "test", 256, 2)


def test_non_square_frames_keep_the_models_scale_and_pad_with_the_pixel_mean(tiny_segmenter):
    """A 640x480 frame is not shrunk into the square: its short side gets the input size, its
    long side is padded up to the backbone's stride with the pixel mean."""
    transform = tiny_segmenter.transform_for(480, 640)
    data = transform.image_to_input(np.zeros((480, 640, 3), np.uint8))
    assert transform.resized_hw == (256, 341)
    assert data.shape == (3, 256, 352)
    band = data[:, :, 341:]
    mean = np.asarray(tiny_segmenter.model.config.pixel_mean, np.float32)
    assert np.allclose(band, mean[:, None, None]) and np.all(data[:, :, :341] == 0)


def test_wide_frames_decode_every_prompt_kind_at_their_own_aspect(tiny_segmenter):
    """Clicks, boxes, masks and memory land on the right pixels of a 1280x720 frame."""
    from seem_ros.prompts import Box, MaskPrompt, ObjectPrompt, Points, PromptSet

    image = np.zeros((720, 1280, 3), np.uint8)
    mask = np.zeros((720, 1280), bool)
    mask[300:420, 1000:1150] = True
    objects = [
        ObjectPrompt(points=Points(np.array([[1075.0, 360.0]]), np.array([1]))),
        ObjectPrompt(box=Box(1000, 300, 1150, 420)),
        ObjectPrompt(mask=MaskPrompt(mask)),
    ]
    encoded = tiny_segmenter.encode_image(image)
    assert encoded.transform.input_hw == (256, 480)
    result = tiny_segmenter.decode(encoded, PromptSet(objects=objects))
    assert len(result.instances) == 3
    assert all(inst.mask.shape == (720, 1280) for inst in result.instances)


def test_a_tracked_object_carries_its_memory_across_wide_frames(tiny_segmenter):
    """Memory masks are rasterised on the wide input's own mask grid (not a square one)."""
    from seem_ros.prompts import ObjectPrompt, Points
    from seem_ros.tracking import Tracker

    rng = np.random.default_rng(0)
    tracker = Tracker(tiny_segmenter, min_score=0.0, min_area=1)
    track_id = tracker.add_object(
        ObjectPrompt(points=Points(np.array([[640.0, 360.0]]), np.array([1])))
    )
    for _ in range(3):
        result = tracker.step(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8))
    assert track_id in tracker.tracks
    assert tracker.tracks[track_id].memory is not None
    assert all(inst.mask.shape == (720, 1280) for inst in result.instances)
