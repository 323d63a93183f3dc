"""From a 3-D point (RViz "Publish Point") to a pixel: TF into the camera frame, then CameraInfo.

A ``geometry_msgs/PointStamped`` in the camera's optical frame (x right, y down, z forward) is
projected with the intrinsics of ``sensor_msgs/CameraInfo``: through ``K`` and the distortion
model for a raw image, through ``P`` for a rectified one (``image_rect``). A point in any other
frame is first moved into the camera frame by a :data:`TransformLookup`, which the adapters
provide (tf2_ros in the node where it is installed, else :mod:`seem_ros.ros.tf_buffer`, which
bag processing uses too).

Binning and ROI of the CameraInfo are not applied: the image is taken to be the full sensor
image the calibration describes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

TransformLookup = Callable[[str, str, int], np.ndarray | None]
"""``lookup(target_frame, source_frame, stamp_ns) -> 4x4`` mapping source points into the
target frame, or None when the transform is unknown. ``stamp_ns`` 0 asks for the latest."""

_PINHOLE_MODELS = frozenset({"plumb_bob", "rational_polynomial"})
_FISHEYE_MODELS = frozenset({"equidistant"})


class ProjectionError(ValueError):
    """A point cannot be turned into a pixel of the image."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        """Short name of the failure, e.g. ``behind_camera``: the counter it is counted under."""


def strip_frame(frame_id: str) -> str:
    """tf2 frame ids carry no leading slash; ROS 1 style ``/base_link`` still appears."""
    return frame_id.lstrip("/")


@dataclass(frozen=True, eq=False)
class CameraModel:
    """The parts of a ``sensor_msgs/CameraInfo`` that projection needs."""

    frame_id: str
    width: int
    height: int
    k: np.ndarray  # (3, 3)
    p: np.ndarray  # (3, 4)
    distortion_model: str
    d: np.ndarray  # (N,)

    @classmethod
    def from_camera_info(cls, msg: Any) -> CameraModel:
        """Validate a CameraInfo message.

        Raises:
            ProjectionError: Zero size, non-finite or singular intrinsics, or a distortion
                model this module cannot apply.
        """
        width, height = int(msg.width), int(msg.height)
        if width <= 0 or height <= 0:
            raise ProjectionError("bad_camera_info", f"camera_info has zero size {width}x{height}")
        k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
        p = np.asarray(msg.p, dtype=np.float64).reshape(3, 4)
        d = np.asarray(msg.d, dtype=np.float64).reshape(-1)
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(p)) and np.all(np.isfinite(d))):
            raise ProjectionError("bad_camera_info", "camera_info K, P or D holds NaN or inf")
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ProjectionError(
                "bad_camera_info",
                f"camera_info K has no focal length (fx={k[0, 0]:g}, fy={k[1, 1]:g}): "
                "is the camera calibrated?",
            )
        model = str(msg.distortion_model)
        if np.any(d != 0) and model not in _PINHOLE_MODELS | _FISHEYE_MODELS:
            raise ProjectionError(
                "bad_camera_info",
                f"camera_info distortion model {model!r} is not supported; "
                f"supported: {sorted(_PINHOLE_MODELS | _FISHEYE_MODELS)}",
            )
        if model in _FISHEYE_MODELS and np.any(d != 0) and d.size != 4:
            raise ProjectionError(
                "bad_camera_info", f"equidistant distortion needs 4 coefficients, got {d.size}"
            )
        return cls(strip_frame(str(msg.header.frame_id)), width, height, k, p, model, d)

    def project(self, point: np.ndarray, *, rectified: bool = False) -> tuple[float, float]:
        """Pixel (x, y) of a point given in this camera's optical frame.

        Args:
            point: (3,) x, y, z in metres, optical frame.
            rectified: use ``P`` (rectified image) instead of ``K`` + distortion (raw image).

        Raises:
            ProjectionError: The point is not finite, behind the camera or outside the image.
        """
        xyz = np.asarray(point, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(xyz)):
            raise ProjectionError("not_finite", f"point {xyz.tolist()} is not finite")
        if xyz[2] <= 0:
            raise ProjectionError(
                "behind_camera", f"point at z={xyz[2]:.3f} m is behind the camera (needs z > 0)"
            )
        if rectified:
            u, v, w = self.p @ np.append(xyz, 1.0)
            x, y = u / w, v / w
        else:
            x, y = self._project_raw(xyz)
        if not (0.0 <= x <= self.width and 0.0 <= y <= self.height):
            raise ProjectionError(
                "outside_image",
                f"point projects to pixel ({x:.1f}, {y:.1f}), outside the "
                f"{self.width}x{self.height} image",
            )
        return float(x), float(y)

    def _project_raw(self, xyz: np.ndarray) -> tuple[float, float]:
        if not np.any(self.d != 0):
            u, v, w = self.k @ xyz
            return u / w, v / w
        object_points = xyz.reshape(1, 1, 3)
        zero = np.zeros(3)
        if self.distortion_model in _FISHEYE_MODELS:
            pixels, _ = cv2.fisheye.projectPoints(object_points, zero, zero, self.k, self.d)
        else:
            pixels, _ = cv2.projectPoints(object_points, zero, zero, self.k, self.d)
        x, y = pixels.reshape(2)
        return float(x), float(y)


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation of a quaternion (normalised first).

    Raises:
        ValueError: The quaternion is zero or not finite.
    """
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"quaternion ({x}, {y}, {z}, {w}) is not a rotation")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def transform_matrix(
    translation: tuple[float, float, float], rotation: tuple[float, float, float, float]
) -> np.ndarray:
    """4x4 homogeneous transform from a translation and an (x, y, z, w) quaternion."""
    matrix = np.eye(4)
    matrix[:3, :3] = quaternion_matrix(*rotation)
    matrix[:3, 3] = translation
    return matrix


def point_in_camera_frame(
    point: np.ndarray,
    frame_id: str,
    stamp_ns: int,
    camera_frame: str,
    lookup: TransformLookup | None,
) -> np.ndarray:
    """Move ``point`` from ``frame_id`` into ``camera_frame``.

    An empty ``frame_id`` or the camera's own frame needs no transform.

    Raises:
        ProjectionError: The point is not finite, or no transform is known.
    """
    xyz = np.asarray(point, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(xyz)):
        raise ProjectionError("not_finite", f"point {xyz.tolist()} is not finite")
    source = strip_frame(frame_id)
    if not source or source == camera_frame:
        return xyz
    matrix = lookup(camera_frame, source, stamp_ns) if lookup is not None else None
    if matrix is None:
        raise ProjectionError(
            "no_transform",
            f"no transform from {source!r} to the camera frame {camera_frame!r} (is TF published?)",
        )
    return (np.asarray(matrix, dtype=np.float64) @ np.append(xyz, 1.0))[:3]
