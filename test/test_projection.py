"""Specification of clicked-point projection (CameraInfo, TF) and of the node's own TF buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seem_ros.ros import messages
from seem_ros.ros.projection import (
    CameraModel,
    ProjectionError,
    point_in_camera_frame,
    quaternion_matrix,
    transform_matrix,
)
from seem_ros.ros.tf_buffer import TfBuffer

FX, FY, CX, CY = 500.0, 400.0, 320.0, 240.0
K = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
SECOND = 1_000_000_000


def camera(**kwargs: object) -> CameraModel:
    header = messages.make_header(0, kwargs.pop("frame_id", "camera_optical"))  # type: ignore[arg-type]
    return CameraModel.from_camera_info(messages.make_camera_info(header, 640, 480, K, **kwargs))


def tf_message(*transforms: tuple[str, str, int, tuple, tuple]) -> object:
    types = messages.TYPESTORE.types
    stamped = []
    for parent, child, stamp_ns, (tx, ty, tz), (qx, qy, qz, qw) in transforms:
        transform = types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=tx, y=ty, z=tz),
            rotation=types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
        )
        stamped.append(
            types["geometry_msgs/msg/TransformStamped"](
                header=messages.make_header(stamp_ns, parent),
                child_frame_id=child,
                transform=transform,
            )
        )
    return types["tf2_msgs/msg/TFMessage"](transforms=stamped)


NO_ROTATION = (0.0, 0.0, 0.0, 1.0)
YAW_90 = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))


# ---------------------------------------------------------------- CameraInfo projection
def test_point_on_the_optical_axis_projects_to_the_principal_point() -> None:
    assert camera().project(np.array([0.0, 0.0, 2.0])) == pytest.approx((CX, CY))


def test_off_axis_point_projects_through_k() -> None:
    x, y = camera().project(np.array([0.2, -0.1, 2.0]))
    assert (x, y) == pytest.approx((CX + FX * 0.1, CY - FY * 0.05))


def test_rectified_projection_uses_p_instead_of_k() -> None:
    p = [250.0, 0.0, 300.0, 0.0, 0.0, 250.0, 200.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    model = camera(p=p)
    assert model.project(np.array([0.2, 0.2, 1.0]), rectified=True) == pytest.approx((350.0, 250.0))
    assert model.project(np.array([0.2, 0.2, 1.0])) == pytest.approx((CX + 100.0, CY + 80.0))


def test_positive_radial_distortion_pushes_off_axis_points_outwards() -> None:
    point = np.array([0.3, 0.2, 1.0])
    ideal = np.array(camera().project(point))
    distorted = np.array(camera(d=[0.1, 0.0, 0.0, 0.0, 0.0]).project(point))
    centre = np.array([CX, CY])
    assert np.linalg.norm(distorted - centre) > np.linalg.norm(ideal - centre) + 1.0


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        ((0.0, 0.0, -1.0), "behind_camera"),
        ((0.0, 0.0, 0.0), "behind_camera"),
        ((5.0, 0.0, 1.0), "outside_image"),
        ((math.nan, 0.0, 1.0), "not_finite"),
    ],
)
def test_unprojectable_points_are_rejected_with_a_reason(point: tuple, reason: str) -> None:
    with pytest.raises(ProjectionError) as raised:
        camera().project(np.array(point))
    assert raised.value.reason == reason


def test_uncalibrated_camera_info_is_rejected() -> None:
    header = messages.make_header(0, "camera")
    info = messages.make_camera_info(header, 640, 480, [0.0] * 9)
    with pytest.raises(ProjectionError, match="no focal length"):
        CameraModel.from_camera_info(info)


def test_unknown_distortion_model_is_rejected() -> None:
    with pytest.raises(ProjectionError, match="not supported"):
        camera(d=[0.1, 0.0, 0.0], distortion_model="kannala_brandt_9")


def test_frame_id_loses_a_leading_slash() -> None:
    assert camera(frame_id="/camera_optical").frame_id == "camera_optical"


# ---------------------------------------------------------------- into the camera frame
def test_point_in_the_camera_frame_needs_no_transform() -> None:
    point = np.array([1.0, 2.0, 3.0])
    result = point_in_camera_frame(point, "camera_optical", 0, "camera_optical", None)
    np.testing.assert_array_equal(result, point)


def test_point_in_another_frame_is_moved_by_the_looked_up_transform() -> None:
    calls = []

    def lookup(target: str, source: str, stamp_ns: int) -> np.ndarray:
        calls.append((target, source, stamp_ns))
        return transform_matrix((0.0, 0.0, 1.0), NO_ROTATION)

    result = point_in_camera_frame(np.array([0.1, 0.2, 0.3]), "/map", 7, "camera_optical", lookup)
    np.testing.assert_allclose(result, [0.1, 0.2, 1.3])
    assert calls == [("camera_optical", "map", 7)]


def test_point_without_a_transform_is_rejected() -> None:
    with pytest.raises(ProjectionError) as raised:
        point_in_camera_frame(np.array([0.0, 0.0, 1.0]), "map", 0, "camera", lambda *_: None)
    assert raised.value.reason == "no_transform"


def test_quarter_turn_about_z_maps_x_onto_y() -> None:
    np.testing.assert_allclose(
        quaternion_matrix(*YAW_90) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12
    )


def test_zero_quaternion_is_not_a_rotation() -> None:
    with pytest.raises(ValueError, match="not a rotation"):
        quaternion_matrix(0.0, 0.0, 0.0, 0.0)


# ---------------------------------------------------------------- TF buffer
def test_chain_of_transforms_composes_from_source_to_target() -> None:
    buffer = TfBuffer()
    buffer.add_message(tf_message(("map", "base", SECOND, (1.0, 0.0, 0.0), YAW_90)), static=False)
    buffer.add_message(tf_message(("base", "camera", 0, (0.0, 0.0, 0.5), NO_ROTATION)), static=True)
    camera_to_map = buffer.lookup("map", "camera", SECOND)
    np.testing.assert_allclose(
        camera_to_map @ [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.5, 1.0], atol=1e-12
    )


def test_lookup_in_the_other_direction_is_the_inverse() -> None:
    buffer = TfBuffer()
    buffer.add_message(tf_message(("map", "base", SECOND, (1.0, 2.0, 0.0), YAW_90)), static=True)
    forward = buffer.lookup("map", "base", 0)
    backward = buffer.lookup("base", "map", 0)
    np.testing.assert_allclose(forward @ backward, np.eye(4), atol=1e-12)


def test_sibling_frames_connect_through_their_common_parent() -> None:
    buffer = TfBuffer()
    buffer.add_message(
        tf_message(
            ("base", "left", 0, (0.0, 0.5, 0.0), NO_ROTATION),
            ("base", "right", 0, (0.0, -0.5, 0.0), NO_ROTATION),
        ),
        static=True,
    )
    left_to_right = buffer.lookup("right", "left", 0)
    np.testing.assert_allclose(left_to_right @ [0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0])


def test_dynamic_transform_is_interpolated_between_stamps() -> None:
    buffer = TfBuffer()
    buffer.add_message(
        tf_message(("odom", "base", SECOND, (0.0, 0.0, 0.0), NO_ROTATION)), static=False
    )
    buffer.add_message(
        tf_message(("odom", "base", 2 * SECOND, (2.0, 0.0, 0.0), YAW_90)), static=False
    )
    halfway = buffer.lookup("odom", "base", SECOND + SECOND // 2)
    np.testing.assert_allclose(halfway[:3, 3], [1.0, 0.0, 0.0])
    yaw = math.degrees(math.atan2(halfway[1, 0], halfway[0, 0]))
    assert yaw == pytest.approx(45.0)


def test_lookup_far_outside_the_stored_time_range_is_unknown() -> None:
    buffer = TfBuffer(extrapolation_s=0.5)
    buffer.add_message(
        tf_message(("odom", "base", 10 * SECOND, (0.0, 0.0, 0.0), NO_ROTATION)), static=False
    )
    assert buffer.lookup("odom", "base", 10 * SECOND + SECOND // 4) is not None
    assert buffer.lookup("odom", "base", 12 * SECOND) is None


def test_unconnected_frames_have_no_transform() -> None:
    buffer = TfBuffer()
    buffer.add_message(tf_message(("map", "base", 0, (0.0, 0.0, 0.0), NO_ROTATION)), static=True)
    assert buffer.lookup("map", "elsewhere", 0) is None


def test_transforms_older_than_the_cache_are_forgotten() -> None:
    buffer = TfBuffer(cache_s=1.0, extrapolation_s=0.0)
    for second in range(5):
        buffer.add_message(
            tf_message(("odom", "base", second * SECOND, (float(second), 0.0, 0.0), NO_ROTATION)),
            static=False,
        )
    assert buffer.lookup("odom", "base", 4 * SECOND) is not None
    assert buffer.lookup("odom", "base", SECOND) is None


def test_invalid_transforms_are_skipped() -> None:
    buffer = TfBuffer()
    stored = buffer.add_message(
        tf_message(
            ("map", "map", 0, (0.0, 0.0, 0.0), NO_ROTATION),
            ("map", "base", 0, (math.nan, 0.0, 0.0), NO_ROTATION),
            ("map", "arm", 0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
        ),
        static=True,
    )
    assert stored == 0
    assert buffer.frames == set()
