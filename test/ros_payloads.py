"""Shared by the node tests: a cheap model and serialized ROS messages to feed the node."""

from __future__ import annotations

import dataclasses

import numpy as np

from seem_ros.model.build import build_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.model.seem import SEEM
from seem_ros.ros import messages
from seem_ros.ros.image_codec import rgb_to_image_msg

HEIGHT, WIDTH = 96, 128
FRAME_ID = "camera_optical"
K = [100.0, 0.0, WIDTH / 2, 0.0, 100.0, HEIGHT / 2, 0.0, 0.0, 1.0]


def small_tiny_model() -> tuple[SEEM, ModelCard]:
    """The random-init ``tiny`` network at 64 px input: the same network, cheaper to run."""
    config = dataclasses.replace(load_config("tiny"), image_size=64)
    return build_model(config, seed=0), ModelCard(config=config, trained=False)


def image_cdr(stamp_ns: int = 1_000, *, height: int = HEIGHT, width: int = WIDTH) -> bytes:
    """An rgb8 Image of seeded noise, stamped ``stamp_ns``."""
    pixels = np.random.default_rng(stamp_ns).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return messages.serialize(rgb_to_image_msg(pixels, messages.make_header(stamp_ns, FRAME_ID)))


def raw_image_cdr(
    encoding: str, width: int, height: int, step: int, data: bytes, stamp_ns: int = 5
) -> bytes:
    """An Image with exactly these fields, however inconsistent (for bad-input tests)."""
    msg = messages.TYPESTORE.types[messages.IMAGE](
        header=messages.make_header(stamp_ns, FRAME_ID),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=np.frombuffer(data, dtype=np.uint8),
    )
    return messages.serialize(msg)


def string_cdr(text: str) -> bytes:
    return messages.serialize(messages.make_string(text))


def point_stamped_cdr(x: float, y: float, z: float, frame_id: str = "") -> bytes:
    """A PointStamped: a pixel click on ``prompt/point`` (``z`` = label) or a 3D point."""
    header = messages.make_header(0, frame_id)
    point = messages.TYPESTORE.types[messages.POINT](x=x, y=y, z=z)
    return messages.serialize(
        messages.TYPESTORE.types[messages.POINT_STAMPED](header=header, point=point)
    )


def mouse_cdr(x: float, y: float) -> bytes:
    """An rqt_image_view click (pixel column and row)."""
    return messages.serialize(messages.TYPESTORE.types[messages.POINT](x=x, y=y, z=0.0))


def camera_info_cdr(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    header = messages.make_header(0, FRAME_ID)
    return messages.serialize(messages.make_camera_info(header, width, height, K))


def boxes_cdr(*boxes: tuple[str, tuple[float, float, float, float]]) -> bytes:
    header = messages.make_header(0, FRAME_ID)
    return messages.serialize(
        messages.make_detection_array(header, [(label, 0.9, box, None) for label, box in boxes])
    )


def mask_cdr(mask: np.ndarray, encoding: str = "mono8") -> bytes:
    return raw_image_cdr(
        encoding, mask.shape[1], mask.shape[0], mask.shape[1], mask.astype(np.uint8).tobytes()
    )
