"""The model input a frame becomes: planar float32, the frame top-left, the margins padded; our
models keep the frame's aspect, a fixed-shape graph gets the frame letterboxed into it."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.model.config import ModelConfig
from seem_ros.transforms import ResizeTransform, fit_inside, model_input_transform

PAD = (123.675, 116.28, 103.53)


@pytest.mark.parametrize(
    ("height", "width", "fit", "divisor", "input_hw"),
    [
        (192, 256, "longest", 1, (256, 256)),  # wide frame: a band below
        (256, 160, "longest", 1, (256, 256)),  # tall frame: a band on the right
        (200, 250, "shortest", 32, (224, 256)),  # official: both sides up to the divisor
        (200, 250, "aspect", 32, (224, 256)),  # ours: the same, short side at the size
        (256, 256, "longest", 1, (256, 256)),  # square: no margin at all
    ],
)
def test_input_holds_the_frame_top_left_and_the_pad_value_elsewhere(
    height: int, width: int, fit: str, divisor: int, input_hw: tuple[int, int]
) -> None:
    # sizes where the frame keeps its scale, so every pixel can be checked exactly
    size = max(height, width) if fit == "longest" else min(height, width)
    transform = ResizeTransform(height, width, size, fit=fit, divisor=divisor, pad_value=PAD)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)

    data = transform.image_to_input(image)

    assert data.shape == (3, *input_hw) and data.dtype == np.float32
    assert data.flags.c_contiguous
    assert np.array_equal(data[:, :height, :width], image.transpose(2, 0, 1).astype(np.float32))
    margin = np.ones(input_hw, bool)
    margin[:height, :width] = False
    for channel, value in enumerate(PAD):
        assert np.all(data[channel][margin] == np.float32(value))


def test_a_resized_frame_fills_the_input_up_to_its_resized_size() -> None:
    transform = ResizeTransform(480, 640, 256, pad_value=PAD)
    image = np.full((480, 640, 3), (10, 20, 30), np.uint8)

    data = transform.image_to_input(image)

    assert transform.resized_hw == (192, 256)
    assert np.all(data[:, :192] == np.array([10, 20, 30], np.float32)[:, None, None])
    assert np.all(data[:, 192:] == np.array(PAD, np.float32)[:, None, None])


@pytest.mark.parametrize(
    ("height", "width", "resized_hw", "input_hw"),
    [
        (256, 256, (256, 256), (256, 256)),  # square frames: the square input as before
        (480, 640, (256, 341), (256, 352)),  # 4:3: the short side at 256, padded to 32
        (720, 1280, (256, 455), (256, 480)),  # 16:9
        (1280, 720, (455, 256), (480, 256)),  # portrait
        (300, 1200, (128, 512), (128, 512)),  # 4:1: the long side capped at twice the size
    ],
)
def test_our_models_keep_the_frames_aspect_and_scale(height, width, resized_hw, input_hw) -> None:
    transform = model_input_transform(ModelConfig(image_size=256), height, width)

    assert transform.resized_hw == resized_hw and transform.input_hw == input_hw
    # coordinates map with one scale on both axes, so shapes are not distorted
    assert np.allclose(
        transform.points_to_input(np.array([width, height])), np.array(resized_hw[::-1]), atol=0.5
    )


def test_a_frame_is_letterboxed_into_a_fixed_input() -> None:
    transform = fit_inside(480, 640, (256, 256), PAD)
    data = transform.image_to_input(np.full((480, 640, 3), 7, np.uint8))

    assert transform.input_hw == (256, 256) and transform.resized_hw == (192, 256)
    assert np.all(data[:, :192] == 7) and np.all(
        data[:, 192:] == np.array(PAD, np.float32)[:, None, None]
    )
    grid = transform.mask_to_grid(np.ones((480, 640), bool), (64, 64))
    assert grid[:48].min() > 0.99 and grid[48:].max() == 0.0
    logits = np.zeros((1, 64, 64), np.float32)
    logits[0, :48] = 1.0
    assert transform.logits_to_image(logits).min() > 0.99  # the band is cropped, not stretched


def test_a_box_needs_its_canvas_and_only_box_and_aspect_fits_take_one() -> None:
    with pytest.raises(ValueError, match="canvas_hw"):
        ResizeTransform(10, 10, 10, fit="box")
    with pytest.raises(ValueError, match="canvas_hw"):
        ResizeTransform(10, 10, 10, fit="longest", canvas_hw=(32, 32))
    with pytest.raises(ValueError, match="smaller than"):
        ResizeTransform(192, 256, 256, fit="aspect", divisor=32, canvas_hw=(256, 256))


def test_an_aspect_fit_on_a_wider_canvas_keeps_its_scale_and_pads_the_rest() -> None:
    own = ResizeTransform(256, 256, 256, fit="aspect", divisor=32, pad_value=PAD)
    wide = ResizeTransform(
        256, 256, 256, fit="aspect", divisor=32, pad_value=PAD, canvas_hw=(256, 352)
    )
    assert wide.scale == own.scale == 1.0 and wide.input_hw == (256, 352)
    data = wide.image_to_input(np.full((256, 256, 3), 7, np.uint8))
    assert np.all(data[:, :, :256] == 7)
    assert np.all(data[:, :, 256:] == np.array(PAD, np.float32)[:, None, None])
    assert np.allclose(wide.points_to_unit(np.array([[176.0, 128.0]])), [[0.5, 0.5]])
    grid = wide.mask_to_grid(np.ones((256, 256), bool), (64, 88))
    assert grid[:, :64].min() > 0.99 and grid[:, 64:].max() == 0.0
    with pytest.raises(ValueError, match="unknown fit"):
        ResizeTransform(10, 10, 10, fit="stretch")
