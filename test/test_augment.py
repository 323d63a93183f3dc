"""The recipe's augmentation (seem_ros.data.augment) and its photo bank (seem_ros.data.photos)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from seem_ros.data import COLOURS, render_scene, scene_seed
from seem_ros.data.augment import (
    AugmentConfig,
    Augmenter,
    CameraParams,
    apply_camera,
    crop_box,
    motion_kernel,
)
from seem_ros.data.photos import PHOTO_SETS, PhotoBank

pytest.importorskip("skimage", reason="the photo bank reads scikit-image's sample photos")

EVERYTHING = AugmentConfig(
    photo_stuff_rate=1.0, photo_thing_rate=1.0, camera_rate=1.0, aspect_rate=1.0
)


@pytest.fixture(scope="module")
def scene():
    return render_scene(scene_seed("train", 5))


def test_photo_sets_are_disjoint_and_load_as_rgb():
    assert not set(PHOTO_SETS["train"]) & set(PHOTO_SETS["eval"])
    for which in PHOTO_SETS:
        bank = PhotoBank.load(which)
        assert len(bank.photos) == len(PHOTO_SETS[which])
        assert all(p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8 for p in bank.photos)


def test_photo_texture_has_the_requested_size_and_range():
    layer = PhotoBank.load("train").texture(np.random.default_rng(0), (48, 80))
    assert layer.shape == (48, 80, 3) and layer.dtype == np.float32
    assert layer.min() >= 0 and layer.max() <= 255 and layer.std() > 1


def test_same_seed_gives_the_same_augmentation(scene):
    augment = Augmenter(EVERYTHING)
    a = augment.scenes([scene], np.random.default_rng(3))[0]
    b = augment.scenes([scene], np.random.default_rng(3))[0]
    assert a.image.tobytes() == b.image.tobytes() and a.phrases == b.phrases
    c = augment.scenes([scene], np.random.default_rng(4))[0]
    assert c.image.tobytes() != a.image.tobytes()


def test_off_config_changes_nothing(scene):
    out = Augmenter(AugmentConfig.off()).scenes([scene], np.random.default_rng(0))[0]
    assert out.image.tobytes() == scene.image.tobytes()
    assert out.phrases == scene.phrases


def test_image_only_path_needs_no_masks(scene):
    out = Augmenter(EVERYTHING)(scene.image, rng=np.random.default_rng(1))
    y0, x0, y1, x1 = out.crop
    assert out.image.shape == (y1 - y0, x1 - x0, 3) and out.image.dtype == np.uint8
    assert out.masks == [] and out.recoloured == ()


def test_masks_are_cut_like_the_image(scene):
    masks = [s.mask for s in scene.segments]
    flags = [s.is_thing for s in scene.segments]
    out = Augmenter(EVERYTHING)(scene.image, masks, rng=np.random.default_rng(2), is_thing=flags)
    y0, x0, y1, x1 = out.crop
    for before, after in zip(masks, out.masks):
        assert np.array_equal(before[y0:y1, x0:x1], after)
    assert out.image.shape[:2] == out.masks[0].shape


def test_crops_are_the_configured_non_square_aspects():
    rng = np.random.default_rng(0)
    for aspect, expected in (((3, 4), (192, 256)), ((9, 16), (144, 256))):
        y0, x0, y1, x1 = crop_box(rng, (256, 256), aspect)
        assert (y1 - y0, x1 - x0) == expected


def test_augmented_scene_ground_truth_stays_consistent(scene):
    augment = Augmenter(EVERYTHING)
    for seed in range(6):
        out = augment.scenes([scene], np.random.default_rng(seed))[0]
        assert out.image.shape[:2] == out.segment_ids.shape
        coverage = sum(s.mask.astype(np.int32) for s in out.segments)
        assert np.all(coverage == 1)
        for segment in out.segments:
            assert np.array_equal(segment.mask, out.segment_ids == segment.id)
            assert segment.area == int(segment.mask.sum()) > 0
        ids = {s.id for s in out.segments}
        assert all(p.target_id in ids for p in out.phrases)


def test_photo_filled_things_are_never_named_by_colour(scene):
    config = dataclasses.replace(EVERYTHING, photo_thing_fill_share=1.0, aspect_rate=0.0)
    out = Augmenter(config).scenes([scene], np.random.default_rng(0))[0]
    colours = {s.colour for s in scene.thing_segments}
    named = {w for p in out.phrases for w in re.findall(r"\w+", p.text) if w in COLOURS}
    assert colours and not named & colours


def test_tints_keep_the_colour_names(scene):
    config = dataclasses.replace(
        EVERYTHING, photo_thing_fill_share=0.0, aspect_rate=0.0, camera_rate=0.0
    )
    out = Augmenter(config).scenes([scene], np.random.default_rng(0))[0]
    assert out.phrases == scene.phrases
    for segment in scene.thing_segments:  # each thing's mean colour barely moves
        before = scene.image[segment.mask].astype(float).mean(axis=0)
        after = out.image[segment.mask].astype(float).mean(axis=0)
        assert np.abs(before - after).max() < 25


def test_frames_of_a_clip_share_one_draw(scene):
    out = Augmenter(EVERYTHING).scenes([scene, scene], np.random.default_rng(7))
    assert out[0].image.shape == out[1].image.shape
    assert out[0].phrases == out[1].phrases
    diff = np.abs(out[0].image.astype(int) - out[1].image.astype(int))
    assert diff.mean() < 20  # same photos, crop and camera; only the noise differs


def test_each_camera_degradation_changes_the_image_and_keeps_its_shape(scene):
    rng = np.random.default_rng(0)
    for params in (
        CameraParams(white_balance=(1.2, 1.0, 0.8)),
        CameraParams(brightness=0.6),
        CameraParams(gamma=1.8),
        CameraParams(blur_sigma=1.5),
        CameraParams(motion_blur=(7.0, 0.5)),
        CameraParams(rescale=0.4),
        CameraParams(noise_sigma=8.0),
        CameraParams(jpeg_quality=20),
    ):
        out = apply_camera(scene.image, params, rng)
        assert out.shape == scene.image.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - scene.image.astype(int)).mean() > 0.5, params
    same = apply_camera(scene.image, CameraParams(), rng)
    assert same.tobytes() == scene.image.tobytes()


def test_motion_kernel_is_normalised():
    kernel = motion_kernel(7.0, 0.3)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and (kernel > 0).sum() >= 5


def test_config_rejects_bad_values_and_unknown_keys():
    with pytest.raises(ValueError, match="jpeg_rate"):
        AugmentConfig(jpeg_rate=1.5)
    with pytest.raises(ValueError, match="gamma"):
        AugmentConfig(gamma=(2.0, 1.0))
    with pytest.raises(ValueError, match="unknown augment keys"):
        AugmentConfig.from_dict({"sharpen_rate": 0.3})
    loaded = AugmentConfig.from_dict({"gamma": [0.7, 1.4], "aspects": [[3, 4]]})
    assert loaded.gamma == (0.7, 1.4) and loaded.aspects == ((3, 4),)
