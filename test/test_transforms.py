"""The model input a frame becomes: planar float32, the frame top-left, the margins padded."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.transforms import ResizeTransform

PAD = (123.675, 116.28, 103.53)


@pytest.mark.parametrize(
    ("height", "width", "fit", "divisor", "input_hw"),
    [
        (192, 256, "longest", 1, (256, 256)),  # wide frame: a band below
        (256, 160, "longest", 1, (256, 256)),  # tall frame: a band on the right
        (200, 250, "shortest", 32, (224, 256)),  # official: both sides up to the divisor
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
