"""Specification of seem_ros.ros.messages: types, CDR and builders."""

from __future__ import annotations

import dataclasses
import struct
import time
from typing import Any

import numpy as np
import pytest
from mcap_ros2._dynamic import serialize_dynamic

from seem_ros.ros import messages
from seem_ros.ros.messages import (
    MessageError,
    deserialize,
    make_camera_info,
    make_detection_array,
    make_diagnostics,
    make_header,
    make_point_stamped,
    make_string,
    ns_from_stamp,
    ros_type_of,
    serialize,
    stamp_from_ns,
)

STAMP_NS = 1_700_000_000_123_456_789


def header() -> Any:
    return make_header(STAMP_NS, "camera")


def round_trip(msg: Any) -> Any:
    return deserialize(serialize(msg), ros_type_of(msg))


def as_plain(value: Any) -> Any:
    """Message object -> dicts, lists and bytes, the input mcap_ros2's encoder takes."""
    if dataclasses.is_dataclass(value):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tobytes() if value.dtype == np.uint8 else value.tolist()
    if isinstance(value, list):
        return [as_plain(item) for item in value]
    return value


def rgb_image(height: int, width: int) -> Any:
    data = np.arange(height * width * 3, dtype=np.uint8)
    return messages.message_class(messages.IMAGE)(
        header=header(),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=data,
    )


def test_typestore_has_every_type_the_node_uses() -> None:
    for ros_type in (
        messages.IMAGE,
        messages.COMPRESSED_IMAGE,
        messages.CAMERA_INFO,
        messages.STRING,
        messages.HEADER,
        messages.POINT_STAMPED,
        messages.DIAGNOSTIC_ARRAY,
        messages.DETECTION_2D_ARRAY,
        messages.TRIGGER_REQUEST,
        messages.TRIGGER_RESPONSE,
        messages.EMPTY_REQUEST,
        messages.EMPTY_RESPONSE,
    ):
        assert ros_type in messages.TYPESTORE.types


def test_stamp_helpers_are_inverse() -> None:
    stamp = stamp_from_ns(STAMP_NS)
    assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert ns_from_stamp(stamp) == STAMP_NS


def test_negative_stamp_is_rejected() -> None:
    with pytest.raises(MessageError, match="outside"):
        stamp_from_ns(-1)


def test_header_round_trips() -> None:
    decoded = round_trip(header())
    assert ns_from_stamp(decoded.stamp) == STAMP_NS
    assert decoded.frame_id == "camera"


def test_string_round_trips() -> None:
    assert round_trip(make_string("cup, red mug")).data == "cup, red mug"


def test_detection_array_round_trips_label_score_box_and_track_id() -> None:
    array = make_detection_array(header(), [("cup", 0.75, (10.0, 20.0, 30.0, 60.0), 7)])
    decoded = round_trip(array)
    (detection,) = decoded.detections
    assert detection.results[0].hypothesis.class_id == "cup"
    assert detection.results[0].hypothesis.score == 0.75
    assert (detection.bbox.center.position.x, detection.bbox.center.position.y) == (20.0, 40.0)
    assert (detection.bbox.size_x, detection.bbox.size_y) == (20.0, 40.0)
    assert detection.id == "7"
    assert ns_from_stamp(detection.header.stamp) == STAMP_NS


def test_untracked_detection_has_empty_id() -> None:
    array = make_detection_array(header(), [("cup", 0.5, (0, 0, 1, 1), None)])
    assert round_trip(array).detections[0].id == ""


def test_detection_with_inverted_box_is_rejected() -> None:
    with pytest.raises(MessageError, match="box of 'cup'"):
        make_detection_array(header(), [("cup", 0.5, (10, 0, 5, 1), 1)])


def test_detection_with_nan_score_is_rejected() -> None:
    with pytest.raises(MessageError, match="score of 'cup' must be finite"):
        make_detection_array(header(), [("cup", float("nan"), (0, 0, 1, 1), 1)])


def test_diagnostics_round_trip_level_and_values() -> None:
    diagnostics = make_diagnostics(STAMP_NS, "seem", 1, "slow", {"fps": "4.5", "backend": "torch"})
    (status,) = round_trip(diagnostics).status
    assert (status.name, status.level, status.message) == ("seem", 1, "slow")
    assert {kv.key: kv.value for kv in status.values} == {"fps": "4.5", "backend": "torch"}


def test_diagnostics_reject_unknown_level() -> None:
    with pytest.raises(MessageError, match=r"level must be 0\.\.3"):
        make_diagnostics(header(), "seem", 7, "?", {})


def test_point_stamped_round_trips() -> None:
    decoded = round_trip(make_point_stamped(header(), 12.5, 40.0))
    assert (decoded.point.x, decoded.point.y, decoded.point.z) == (12.5, 40.0, 0.0)


def test_camera_info_round_trips_with_default_rectification_and_projection() -> None:
    k = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
    decoded = round_trip(make_camera_info(header(), 640, 480, k, d=[0.1, -0.02, 0, 0, 0]))
    assert (decoded.width, decoded.height) == (640, 480)
    np.testing.assert_array_equal(decoded.k, k)
    np.testing.assert_array_equal(decoded.r, np.eye(3).ravel())
    np.testing.assert_array_equal(decoded.p.reshape(3, 4)[:, :3], np.reshape(k, (3, 3)))
    np.testing.assert_array_equal(decoded.d, [0.1, -0.02, 0, 0, 0])


def test_camera_info_rejects_wrong_sized_intrinsics() -> None:
    with pytest.raises(MessageError, match="k needs 9 values, got 4"):
        make_camera_info(header(), 640, 480, [1, 2, 3, 4])


def test_trigger_response_round_trips() -> None:
    response = messages.message_class(messages.TRIGGER_RESPONSE)(success=True, message="reset")
    decoded = round_trip(response)
    assert (decoded.success, decoded.message) == (True, "reset")


def test_cdr_matches_an_independent_ros2_encoder() -> None:
    """mcap_ros2 has its own CDR writer (reachable only via a private module);
    every builder's bytes must agree with it."""
    built = [
        header(),
        make_string("cup"),
        make_detection_array(
            header(), [("cup", 0.5, (1, 2, 3, 4), 3), ("mug", 0.25, (0, 0, 9, 9))]
        ),
        make_diagnostics(header(), "seem", 0, "ok", {"fps": "30"}),
        make_point_stamped(header(), 1.0, 2.0),
        make_camera_info(header(), 64, 48, np.eye(3), d=[0.1]),
        rgb_image(3, 5),
        messages.message_class(messages.EMPTY_REQUEST)(structure_needs_at_least_one_member=0),
    ]
    for msg in built:
        ros_type = ros_type_of(msg)
        definition, _ = messages.TYPESTORE.generate_msgdef(ros_type, ros_version=2)
        encode = serialize_dynamic(ros_type, definition)[ros_type]
        assert serialize(msg) == bytes(encode(as_plain(msg))), ros_type


def test_image_cdr_has_the_ros2_wire_layout() -> None:
    image = rgb_image(2, 3)
    expected = (
        b"\x00\x01\x00\x00"  # CDR little-endian encapsulation
        + struct.pack("<iI", 1_700_000_000, 123_456_789)
        + struct.pack("<I", 7)
        + b"camera\x00"
        + b"\x00"  # pad to 4
        + struct.pack("<II", 2, 3)
        + struct.pack("<I", 5)
        + b"rgb8\x00"
        + b"\x00"  # is_bigendian
        + b"\x00\x00"  # pad to 4
        + struct.pack("<II", 9, 18)
        + bytes(range(18))
    )
    assert serialize(image) == expected


def test_image_data_given_as_bytes_serializes_like_numpy() -> None:
    image = rgb_image(4, 4)
    as_bytes = dataclasses.replace(image, data=image.data.tobytes())
    assert serialize(as_bytes) == serialize(image)


def test_vga_image_round_trip_takes_a_few_milliseconds_at_most() -> None:
    image = rgb_image(480, 640)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        decoded = deserialize(serialize(image), messages.IMAGE)
        timings.append(time.perf_counter() - start)
    np.testing.assert_array_equal(decoded.data, image.data)
    assert min(timings) < 0.005


def test_short_type_names_are_accepted() -> None:
    cdr = serialize(make_string("x"), "std_msgs/String")
    assert deserialize(cdr, "std_msgs/String").data == "x"


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(MessageError, match="unknown ROS type 'foo_msgs/msg/Bar'"):
        deserialize(b"\x00\x01\x00\x00", "foo_msgs/msg/Bar")


def test_serialize_rejects_a_message_of_another_type() -> None:
    with pytest.raises(MessageError, match="is a std_msgs/msg/String, not a sensor_msgs/msg/Image"):
        serialize(make_string("x"), messages.IMAGE)


def test_serialize_rejects_non_messages() -> None:
    with pytest.raises(MessageError, match="not a ROS message"):
        serialize({"data": "x"})


def test_deserialize_rejects_truncated_bytes() -> None:
    cdr = serialize(rgb_image(4, 4))
    with pytest.raises(MessageError, match="cannot deserialize"):
        deserialize(cdr[:30], messages.IMAGE)


# ---------------------------------------------------------------- against rclpy's own CDR
def rclpy_message(ros_type: str) -> Any:
    from seem_ros.ros.node import ros_interface

    return ros_interface(ros_type)


def same_cdr(rclpy_cdr: bytes, ours: bytes, ros_type: str) -> bool:
    """Equal up to alignment padding, whose bytes rclpy leaves unspecified."""
    return len(rclpy_cdr) == len(ours) and serialize(deserialize(rclpy_cdr, ros_type)) == ours


def test_detections_match_rclpys_vision_msgs() -> None:
    """The core serializes with rosbags; the node publishes those bytes as vision_msgs."""
    from rclpy.serialization import deserialize_message, serialize_message

    ours = serialize(make_detection_array(header(), [("mug", 0.75, (1.0, 2.0, 11.0, 22.0), 7)]))
    theirs = deserialize_message(ours, rclpy_message(messages.DETECTION_2D_ARRAY))
    detection = theirs.detections[0]
    assert (detection.id, detection.results[0].hypothesis.class_id) == ("7", "mug")
    assert (detection.bbox.size_x, detection.bbox.center.position.y) == (10.0, 12.0)
    assert same_cdr(serialize_message(theirs), ours, messages.DETECTION_2D_ARRAY)


def test_label_info_matches_rclpys_vision_msgs() -> None:
    from rclpy.serialization import deserialize_message, serialize_message

    ours = serialize(messages.make_label_info(header(), ["mug", "door handle"], 0.5))
    theirs = deserialize_message(ours, rclpy_message(messages.LABEL_INFO))
    assert [(c.class_id, c.class_name) for c in theirs.class_map] == [
        (1, "mug"),
        (2, "door handle"),
    ]
    assert same_cdr(serialize_message(theirs), ours, messages.LABEL_INFO)


def test_tf_message_from_rclpy_reads_in_the_typestore() -> None:
    from rclpy.serialization import serialize_message

    tf_message = rclpy_message(messages.TF_MESSAGE)()
    transform = rclpy_message("geometry_msgs/msg/TransformStamped")()
    transform.header.frame_id, transform.child_frame_id = "map", "camera"
    transform.transform.translation.z = 2.0
    tf_message.transforms = [transform]
    ours = deserialize(serialize_message(tf_message), messages.TF_MESSAGE)
    assert ours.transforms[0].child_frame_id == "camera"
    assert ours.transforms[0].transform.translation.z == 2.0
