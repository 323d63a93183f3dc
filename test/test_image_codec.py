"""Specification of seem_ros.ros.image_codec: ROS images <-> numpy RGB."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from seem_ros.ros import messages
from seem_ros.ros.image_codec import (
    ImageFormatError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    mono8_msg_to_mask,
    mono16_to_image_msg,
    rgb_to_compressed_msg,
    rgb_to_image_msg,
)

HEADER = messages.make_header(1_000_000_000, "camera")
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def image_msg(
    pixels: np.ndarray,
    encoding: str,
    *,
    step: int | None = None,
    is_bigendian: int = 0,
    data: Any = None,
) -> Any:
    """Build an Image from rows of raw pixel bytes, padding each row to ``step``."""
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    row_bytes = rows.shape[1]
    step = row_bytes if step is None else step
    padded = np.full((height, step), 0xEE, dtype=np.uint8)
    padded[:, :row_bytes] = rows[:, :step]
    return messages.message_class(messages.IMAGE)(
        header=HEADER,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=padded.reshape(-1) if data is None else data,
    )


def colour_strip() -> np.ndarray:
    """A 2x3 RGB image: red, green, blue columns."""
    return np.array([[RED, GREEN, BLUE]] * 2, dtype=np.uint8)


def test_rgb8_is_returned_unchanged() -> None:
    rgb = colour_strip()
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(rgb, "rgb8")), rgb)


def test_rgb8_result_is_a_writable_copy() -> None:
    msg = image_msg(colour_strip(), "rgb8")
    result = image_msg_to_rgb(msg)
    result[:] = 0
    assert msg.data.max() == 255


@pytest.mark.parametrize("encoding", ["bgr8", "8UC3"])
def test_bgr_channels_are_swapped_to_rgb(encoding: str) -> None:
    rgb = colour_strip()
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(rgb[..., ::-1], encoding)), rgb)


def test_rgba8_drops_alpha() -> None:
    rgb = colour_strip()
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(rgba, "rgba8")), rgb)


def test_bgra8_swaps_channels_and_drops_alpha() -> None:
    rgb = colour_strip()
    bgra = np.concatenate([rgb[..., ::-1], np.full((2, 3, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(bgra, "bgra8")), rgb)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding: str) -> None:
    gray = np.array([[0, 100, 255]], dtype=np.uint8)
    result = image_msg_to_rgb(image_msg(gray, encoding))
    np.testing.assert_array_equal(result, np.repeat(gray[..., None], 3, axis=2))


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_16_bit_is_scaled_to_8_bit_over_the_full_range(encoding: str) -> None:
    values = np.array([[0, 256, 32768, 65535]], dtype="<u2")
    result = image_msg_to_rgb(image_msg(values, encoding))
    np.testing.assert_array_equal(result[0, :, 0], [0, 1, 128, 255])


def test_big_endian_16_bit_is_decoded_big_endian() -> None:
    values = np.array([[0x0100, 0xFF00]], dtype=">u2")
    result = image_msg_to_rgb(image_msg(values, "mono16", is_bigendian=1))
    np.testing.assert_array_equal(result[0, :, 0], [1, 255])


@pytest.mark.parametrize(
    ("encoding", "macro_pixel"),
    [
        ("yuv422", [128, 235, 128, 235]),  # U Y V Y
        ("uyvy", [128, 235, 128, 235]),
        ("yuv422_yuy2", [235, 128, 235, 128]),  # Y U Y V
        ("yuyv", [235, 128, 235, 128]),
    ],
)
def test_yuv422_of_flat_white_decodes_to_white(encoding: str, macro_pixel: list[int]) -> None:
    packed = np.tile(np.array(macro_pixel, np.uint8), (2, 2)).reshape(2, 4, 2)
    result = image_msg_to_rgb(image_msg(packed, encoding))
    assert result.shape == (2, 4, 3)
    assert np.all(result >= 250)


def test_yuyv_chroma_order_differs_from_uyvy() -> None:
    """A saturated red in YUYV order must not decode as red when read as UYVY."""
    y, u, v = 81, 90, 240  # BT.601 red
    yuyv = np.tile(np.array([y, u, y, v], np.uint8), 2).reshape(1, 4, 2)
    red = image_msg_to_rgb(image_msg(yuyv, "yuyv"))
    assert red[0, 0, 0] > 200 and red[0, 0, 1] < 60 and red[0, 0, 2] < 60
    misread = image_msg_to_rgb(image_msg(yuyv, "uyvy"))
    assert not np.array_equal(misread, red)


def test_row_padding_is_ignored() -> None:
    rgb = colour_strip()
    np.testing.assert_array_equal(image_msg_to_rgb(image_msg(rgb, "rgb8", step=16)), rgb)


def test_row_padding_is_ignored_for_16_bit() -> None:
    values = np.array([[256, 512], [768, 1024]], dtype="<u2")
    result = image_msg_to_rgb(image_msg(values, "16UC1", step=7))
    np.testing.assert_array_equal(result[..., 0], [[1, 2], [3, 4]])


def test_data_as_bytes_is_accepted() -> None:
    rgb = colour_strip()
    msg = image_msg(rgb, "rgb8", data=rgb.tobytes())
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)


def test_image_survives_cdr_round_trip() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    cdr = messages.serialize(rgb_to_image_msg(rgb, HEADER, "bgr8"))
    np.testing.assert_array_equal(image_msg_to_rgb(messages.deserialize(cdr, messages.IMAGE)), rgb)


def test_unsupported_encoding_is_rejected_by_name() -> None:
    with pytest.raises(ImageFormatError, match="unsupported image encoding '32FC1'"):
        image_msg_to_rgb(image_msg(np.zeros((2, 2), np.float32), "32FC1"))


def test_step_smaller_than_row_is_rejected() -> None:
    msg = image_msg(colour_strip(), "rgb8", step=8)
    with pytest.raises(ImageFormatError, match=r"step 8 is less than width\*bytes_per_pixel = 9"):
        image_msg_to_rgb(msg)


def test_data_size_not_step_times_height_is_rejected() -> None:
    msg = image_msg(colour_strip(), "rgb8", data=np.zeros(17, np.uint8))
    with pytest.raises(ImageFormatError, match="has 17 bytes, expected step\\*height = 9\\*2 = 18"):
        image_msg_to_rgb(msg)


def test_zero_sized_image_is_rejected() -> None:
    msg = image_msg(colour_strip(), "rgb8", data=np.zeros(0, np.uint8))
    msg.height = 0
    with pytest.raises(ImageFormatError, match="zero size: 3x0"):
        image_msg_to_rgb(msg)


def test_image_above_the_pixel_limit_is_rejected() -> None:
    msg = image_msg(np.zeros((10, 10, 3), np.uint8), "rgb8")
    with pytest.raises(ImageFormatError, match="100 pixels exceeds the limit of 99"):
        image_msg_to_rgb(msg, max_pixels=99)


def test_odd_width_yuv_is_rejected() -> None:
    with pytest.raises(ImageFormatError, match="width must be even, got 3"):
        image_msg_to_rgb(image_msg(np.zeros((2, 3, 2), np.uint8), "yuyv"))


def test_image_format_error_is_a_value_error() -> None:
    assert issubclass(ImageFormatError, ValueError)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_rgb_to_image_msg_round_trips(encoding: str) -> None:
    rgb = colour_strip()
    msg = rgb_to_image_msg(rgb, HEADER, encoding)
    assert (msg.encoding, msg.width, msg.height, msg.step) == (encoding, 3, 2, 9)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)


def test_rgb_to_mono8_image_msg_converts_to_gray() -> None:
    msg = rgb_to_image_msg(np.full((2, 2, 3), 90, np.uint8), HEADER, "mono8")
    assert (msg.encoding, msg.step) == ("mono8", 2)
    np.testing.assert_array_equal(msg.data, [90, 90, 90, 90])


def test_rgb_to_image_msg_rejects_non_rgb_arrays() -> None:
    with pytest.raises(ImageFormatError, match="HxWx3 RGB array, got shape \\(2, 2\\)"):
        rgb_to_image_msg(np.zeros((2, 2), np.uint8), HEADER)


def test_mono16_ids_are_written_little_endian() -> None:
    ids = np.array([[0, 1], [258, 65535]], dtype=np.int32)
    msg = mono16_to_image_msg(ids, HEADER)
    assert (msg.encoding, msg.is_bigendian, msg.step) == ("mono16", 0, 4)
    assert msg.data.tobytes() == np.array([0, 1, 258, 65535], "<u2").tobytes()


def test_mono16_rejects_values_out_of_range() -> None:
    with pytest.raises(ImageFormatError, match=r"0\.\.65535, got 0\.\.70000"):
        mono16_to_image_msg(np.array([[0, 70000]]), HEADER)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mask_is_true_where_nonzero(encoding: str) -> None:
    pixels = np.array([[0, 255, 1], [0, 0, 9]], np.uint8)
    mask = mono8_msg_to_mask(image_msg(pixels, encoding, step=4))
    np.testing.assert_array_equal(mask, pixels != 0)
    assert mask.dtype == np.bool_


def test_mask_rejects_colour_images() -> None:
    with pytest.raises(ImageFormatError, match="mono8 or 8UC1, got 'rgb8'"):
        mono8_msg_to_mask(image_msg(colour_strip(), "rgb8"))


def test_png_round_trip_is_lossless() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    msg = rgb_to_compressed_msg(rgb, HEADER, "png")
    assert msg.format == "png"
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg), rgb)


def test_jpeg_keeps_colour_channels_in_rgb_order() -> None:
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red
    decoded = compressed_msg_to_rgb(rgb_to_compressed_msg(rgb, HEADER, "jpeg"))
    assert decoded.shape == (16, 16, 3)
    assert abs(int(decoded[8, 8, 0]) - 200) < 8 and decoded[8, 8, 2] < 8


def test_compressed_image_from_another_encoder_decodes() -> None:
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's BGR order
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    msg = messages.message_class(messages.COMPRESSED_IMAGE)(
        header=HEADER, format="bgr8; png compressed bgr8", data=png.reshape(-1)
    )
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg)[0, 0], BLUE)


def test_undecodable_compressed_image_is_rejected() -> None:
    msg = messages.message_class(messages.COMPRESSED_IMAGE)(
        header=HEADER, format="jpeg", data=np.frombuffer(b"not a jpeg", np.uint8)
    )
    with pytest.raises(ImageFormatError, match="cannot decode 10 bytes"):
        compressed_msg_to_rgb(msg)


def test_empty_compressed_image_is_rejected() -> None:
    msg = messages.message_class(messages.COMPRESSED_IMAGE)(
        header=HEADER, format="jpeg", data=np.zeros(0, np.uint8)
    )
    with pytest.raises(ImageFormatError, match="no data"):
        compressed_msg_to_rgb(msg)


def test_compressed_depth_is_rejected() -> None:
    msg = messages.message_class(messages.COMPRESSED_IMAGE)(
        header=HEADER, format="16UC1; compressedDepth png", data=np.ones(20, np.uint8)
    )
    with pytest.raises(ImageFormatError, match="compressed depth"):
        compressed_msg_to_rgb(msg)


def test_compressed_image_above_the_pixel_limit_is_rejected() -> None:
    msg = rgb_to_compressed_msg(np.zeros((10, 10, 3), np.uint8), HEADER, "png")
    with pytest.raises(ImageFormatError, match="exceeds the limit"):
        compressed_msg_to_rgb(msg, max_pixels=50)


def test_unknown_compression_format_is_rejected() -> None:
    with pytest.raises(ImageFormatError, match="'webp'"):
        rgb_to_compressed_msg(colour_strip(), HEADER, "webp")
