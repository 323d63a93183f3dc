"""Conversions between ROS image messages and numpy arrays.

cv_bridge converts rclpy message classes, but the middleware adapters hand the
core serialized bytes, which ``messages.deserialize`` turns into typestore
dataclasses; cv_bridge never sees those, and it is not installed without ROS.
So numpy and OpenCV do every conversion here, for every adapter and for bags.

The model consumes HxWx3 uint8 RGB; everything incoming is brought to that form.
16-bit images are scaled to 8 bit over the full range (``value >> 8``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from seem_ros.ros.messages import COMPRESSED_IMAGE, IMAGE, TYPESTORE

DEFAULT_MAX_PIXELS = 7680 * 4320
"""Largest accepted image (8K UHD): a guard against absurd or corrupt sizes."""


class ImageFormatError(ValueError):
    """An image message cannot be converted: bad encoding, size or data."""


@dataclass(frozen=True)
class _Layout:
    channels: int
    bytes_per_channel: int
    to_rgb: int | None
    """``cv2.cvtColor`` code to RGB; ``None`` when the pixels are RGB already."""


_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, None),
    "bgr8": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "8UC3": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": _Layout(4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    "8UC1": _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    "mono16": _Layout(1, 2, cv2.COLOR_GRAY2RGB),
    "16UC1": _Layout(1, 2, cv2.COLOR_GRAY2RGB),
    "yuv422": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV),
    "yuyv": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV),
}
_YUV_ENCODINGS = frozenset({"yuv422", "uyvy", "yuv422_yuy2", "yuyv"})
SUPPORTED_ENCODINGS = frozenset(_LAYOUTS)


def _as_uint8_buffer(data: Any) -> np.ndarray:
    """View a message's ``uint8[]`` data (numpy, bytes-like or list) as a flat array."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageFormatError(f"image data must be uint8, got {data.dtype}")
        return data.reshape(-1)
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"image has zero size: {width}x{height}")
    if width * height > max_pixels:
        raise ImageFormatError(
            f"image of {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{max_pixels} pixels"
        )


def _pixel_rows(msg: Any, layout: _Layout, max_pixels: int) -> np.ndarray:
    """Return the image's pixel bytes as (height, width * bytes_per_pixel), padding cut."""
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_pixels)
    row_bytes = width * layout.channels * layout.bytes_per_channel
    if step < row_bytes:
        raise ImageFormatError(
            f"{msg.encoding} image step {step} is less than width*bytes_per_pixel = {row_bytes}"
        )
    data = _as_uint8_buffer(msg.data)
    if data.size != step * height:
        raise ImageFormatError(
            f"{msg.encoding} image data has {data.size} bytes, expected step*height = "
            f"{step}*{height} = {step * height}"
        )
    return data.reshape(height, step)[:, :row_bytes]


def image_msg_to_rgb(msg: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert a ``sensor_msgs/msg/Image`` to a new HxWx3 uint8 RGB array.

    Row padding (``step`` > row size) is dropped and ``is_bigendian`` is honoured
    for 16-bit encodings.

    Raises:
        ImageFormatError: Unsupported encoding or inconsistent size/step/data.
    """
    encoding = str(msg.encoding)
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageFormatError(
            f"unsupported image encoding {encoding!r}; supported: {sorted(SUPPORTED_ENCODINGS)}"
        )
    rows = _pixel_rows(msg, layout, max_pixels)
    height, width = int(msg.height), int(msg.width)
    if encoding in _YUV_ENCODINGS and width % 2:
        raise ImageFormatError(f"{encoding} image width must be even, got {width}")
    if layout.bytes_per_channel == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
        pixels = (pixels >> 8).astype(np.uint8)
    else:
        pixels = rows.reshape(height, width, layout.channels)
    if layout.to_rgb is None:
        return np.array(pixels, dtype=np.uint8, order="C")
    return cv2.cvtColor(np.ascontiguousarray(pixels), layout.to_rgb)


def compressed_msg_to_rgb(msg: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/msg/CompressedImage`` (JPEG or PNG) to HxWx3 uint8 RGB.

    Raises:
        ImageFormatError: The payload is empty, a compressed depth image, or undecodable.
    """
    image_format = str(msg.format)
    if "compresseddepth" in image_format.lower():
        raise ImageFormatError(f"compressed depth images are not supported ({image_format!r})")
    data = _as_uint8_buffer(msg.data)
    if data.size == 0:
        raise ImageFormatError("compressed image has no data")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageFormatError(
            f"cannot decode {data.size} bytes of compressed image (format {image_format!r})"
        )
    _check_size(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise ImageFormatError(f"expected a uint8 numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFormatError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageFormatError(f"image has zero size: {rgb.shape[1]}x{rgb.shape[0]}")


def _image_msg(header: Any, pixels: np.ndarray, encoding: str) -> Any:
    height, width = pixels.shape[:2]
    return TYPESTORE.types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=pixels.nbytes // height,
        data=np.ascontiguousarray(pixels).reshape(-1).view(np.uint8),
    )


_FROM_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_RGB2BGR,
    "mono8": cv2.COLOR_RGB2GRAY,
}


def rgb_to_image_msg(rgb: np.ndarray, header: Any, encoding: str = "rgb8") -> Any:
    """Wrap an HxWx3 uint8 RGB array as a ``sensor_msgs/msg/Image``.

    Args:
        rgb: Pixels in RGB order.
        header: Message header.
        encoding: ``rgb8``, ``bgr8`` or ``mono8``; pixels are converted to it.
    """
    _check_rgb(rgb)
    if encoding not in _FROM_RGB:
        raise ImageFormatError(
            f"cannot write encoding {encoding!r}; choose one of {sorted(_FROM_RGB)}"
        )
    code = _FROM_RGB[encoding]
    pixels = rgb if code is None else cv2.cvtColor(rgb, code)
    return _image_msg(header, pixels, encoding)


def mono16_to_image_msg(ids: np.ndarray, header: Any) -> Any:
    """Wrap an HxW array of 16-bit values (e.g. instance IDs) as a mono16 Image.

    The data is written little-endian with ``is_bigendian = 0``.

    Raises:
        ImageFormatError: Not 2-D, not integer, or values outside 0..65535.
    """
    if not isinstance(ids, np.ndarray) or ids.ndim != 2 or ids.dtype.kind not in "ui":
        raise ImageFormatError(
            f"expected an HxW integer array, got {getattr(ids, 'shape', type(ids).__name__)}"
        )
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ImageFormatError(f"image has zero size: {ids.shape[1]}x{ids.shape[0]}")
    if ids.dtype != np.uint16 and (ids.min() < 0 or ids.max() > np.iinfo(np.uint16).max):
        raise ImageFormatError(f"mono16 values must lie in 0..65535, got {ids.min()}..{ids.max()}")
    return _image_msg(header, ids.astype("<u2", copy=False), "mono16")


def mono8_msg_to_mask(msg: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert a mono8/8UC1 Image to an HxW bool mask (non-zero pixels are True).

    Raises:
        ImageFormatError: Other encodings or inconsistent size/step/data.
    """
    encoding = str(msg.encoding)
    if encoding not in ("mono8", "8UC1"):
        raise ImageFormatError(f"a mask image must be mono8 or 8UC1, got {encoding!r}")
    return _pixel_rows(msg, _LAYOUTS[encoding], max_pixels) != 0


def rgb_to_compressed_msg(
    rgb: np.ndarray, header: Any, image_format: str = "jpeg", *, jpeg_quality: int = 90
) -> Any:
    """Encode an HxWx3 uint8 RGB array as a ``sensor_msgs/msg/CompressedImage``.

    Args:
        rgb: Pixels in RGB order.
        header: Message header.
        image_format: ``jpeg`` or ``png``; written to the message's ``format`` field.
        jpeg_quality: JPEG quality 1..100.
    """
    _check_rgb(rgb)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if image_format == "jpeg":
        if not 1 <= jpeg_quality <= 100:
            raise ImageFormatError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    elif image_format == "png":
        ok, encoded = cv2.imencode(".png", bgr)
    else:
        raise ImageFormatError(f"cannot compress to {image_format!r}; choose 'jpeg' or 'png'")
    if not ok:
        raise ImageFormatError(f"OpenCV failed to encode a {rgb.shape} image as {image_format}")
    return TYPESTORE.types[COMPRESSED_IMAGE](
        header=header, format=image_format, data=encoded.reshape(-1)
    )
