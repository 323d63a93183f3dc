"""ROS 2 message types, CDR (de)serialization and message builders.

The node's core and every middleware adapter share this module, so the bytes an
adapter publishes are produced in exactly one place. Serialized messages are CDR
with the 4-byte encapsulation header, as ``rclpy.serialization`` produces them.

Types come from one module-level ``rosbags`` typestore (ROS 2 Humble), extended
with the ``vision_msgs`` 4.x messages and the ``std_srvs`` request/response
types when the store lacks them. Message objects are the typestore's dataclasses;
primitive arrays inside them are numpy arrays.

Measured on a shared 2-core CPU, serialize+deserialize of a 640x480 rgb8
``sensor_msgs/msg/Image`` takes well under a millisecond through rosbags' generated
code (its ``uint8[]`` path is a single buffer copy), so no hand-written fast path is
needed; ``test_messages.py`` guards that budget.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype
from rosbags.typesys.store import Typestore

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
HEADER = "std_msgs/msg/Header"
STRING = "std_msgs/msg/String"
TIME = "builtin_interfaces/msg/Time"
POINT = "geometry_msgs/msg/Point"
POINT_STAMPED = "geometry_msgs/msg/PointStamped"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
DETECTION_2D_ARRAY = "vision_msgs/msg/Detection2DArray"
LABEL_INFO = "vision_msgs/msg/LabelInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
TRIGGER_REQUEST = "std_srvs/srv/Trigger_Request"
TRIGGER_RESPONSE = "std_srvs/srv/Trigger_Response"
EMPTY_REQUEST = "std_srvs/srv/Empty_Request"
EMPTY_RESPONSE = "std_srvs/srv/Empty_Response"

# ROS 2 Humble vision_msgs 4.x definitions (comments and constants dropped).
_VISION_MSGS: dict[str, str] = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": (
        "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n"
    ),
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/Detection2D": (
        "std_msgs/Header header\n"
        "vision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox2D bbox\n"
        "string id\n"
    ),
    "vision_msgs/msg/Detection2DArray": (
        "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n"
    ),
    "vision_msgs/msg/VisionClass": "uint16 class_id\nstring class_name\n",
    "vision_msgs/msg/LabelInfo": (
        "std_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold\n"
    ),
}

# rosidl gives an empty structure one uint8 member; the wire format carries it.
_EMPTY_STRUCT = "uint8 structure_needs_at_least_one_member\n"
_STD_SRVS: dict[str, str] = {
    TRIGGER_REQUEST: _EMPTY_STRUCT,
    TRIGGER_RESPONSE: "bool success\nstring message\n",
    EMPTY_REQUEST: _EMPTY_STRUCT,
    EMPTY_RESPONSE: _EMPTY_STRUCT,
}

_NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "uint8": np.uint8,
    "int8": np.int8,
    "uint16": np.uint16,
    "int16": np.int16,
    "uint32": np.uint32,
    "int32": np.int32,
    "uint64": np.uint64,
    "int64": np.int64,
    "float32": np.float32,
    "float64": np.float64,
}

_MAX_STAMP_NS = (2**31) * 1_000_000_000 - 1


class MessageError(ValueError):
    """A message, type name or serialized buffer is not what was asked for."""


class DiagnosticLevel(IntEnum):
    """``diagnostic_msgs/DiagnosticStatus`` levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class Detection(NamedTuple):
    """One detection to publish: class label, score, pixel box and track ID."""

    label: str
    score: float
    bbox_xyxy: tuple[float, float, float, float]
    track_id: int | str | None = None


def _build_typestore() -> Typestore:
    store = get_typestore(Stores.ROS2_HUMBLE)
    typedefs: dict[str, Any] = {}
    for name, text in _VISION_MSGS.items():
        if name not in store.types:
            typedefs.update(get_types_from_msg(text, name))
    for name, text in _STD_SRVS.items():
        if name not in store.types:
            # The .msg parser only names types "<pkg>/msg/<Name>"; parse under that
            # name and register the result under the service type name.
            package, _, type_name = name.split("/")
            parsed = get_types_from_msg(text, f"{package}/msg/{type_name}")
            typedefs[name] = parsed[f"{package}/msg/{type_name}"]
    if typedefs:
        store.register(typedefs)
    return store


TYPESTORE: Typestore = _build_typestore()


def normalize_type_name(ros_type: str) -> str:
    """Return the canonical ``pkg/msg/Name`` form; ``pkg/Name`` is accepted too.

    Raises:
        MessageError: The name is malformed or not in the typestore.
    """
    parts = ros_type.split("/")
    if len(parts) == 2 and all(parts):
        canonical = f"{parts[0]}/msg/{parts[1]}"
    elif len(parts) == 3 and all(parts):
        canonical = ros_type
    else:
        raise MessageError(f"malformed ROS type name {ros_type!r}; expected 'pkg/msg/Name'")
    if canonical not in TYPESTORE.types:
        raise MessageError(f"unknown ROS type {ros_type!r}: not in the typestore")
    return canonical


def message_class(ros_type: str) -> type:
    """Return the message dataclass for ``ros_type``."""
    return TYPESTORE.types[normalize_type_name(ros_type)]


def ros_type_of(msg: object) -> str:
    """Return the canonical ROS type name of a typestore message object."""
    ros_type = getattr(type(msg), "__msgtype__", None)
    if not isinstance(ros_type, str):
        raise MessageError(f"{type(msg).__name__} is not a ROS message class of the typestore")
    return ros_type


@functools.cache
def _primitive_array_fields(ros_type: str) -> list[tuple[str, type[np.generic]]]:
    fields = TYPESTORE.fielddefs[ros_type][1]
    result = []
    for name, (nodetype, detail) in fields:
        if nodetype in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            (element_nodetype, element_detail), _ = detail
            if element_nodetype == Nodetype.BASE and element_detail[0] in _NUMPY_DTYPES:
                result.append((name, _NUMPY_DTYPES[element_detail[0]]))
    return result


def _with_numpy_arrays(msg: Any, ros_type: str) -> Any:
    """Convert top-level primitive arrays given as bytes or lists to numpy.

    rosbags serializes primitive arrays only from numpy arrays; accepting
    ``bytes`` for ``Image.data`` and friends saves every caller a conversion.
    """
    changes = {}
    for name, dtype in _primitive_array_fields(ros_type):
        value = getattr(msg, name)
        if isinstance(value, bytes | bytearray | memoryview):
            changes[name] = np.frombuffer(value, dtype=dtype)
        elif isinstance(value, list | tuple):
            changes[name] = np.asarray(value, dtype=dtype)
    return dataclasses.replace(msg, **changes) if changes else msg


def serialize(msg: object, ros_type: str | None = None) -> bytes:
    """Serialize ``msg`` to CDR bytes, encapsulation header included.

    Args:
        msg: A typestore message object.
        ros_type: Expected type name; defaults to the message's own type.

    Raises:
        MessageError: The message is not of ``ros_type`` or cannot be serialized.
    """
    actual = ros_type_of(msg)
    if ros_type is not None and normalize_type_name(ros_type) != actual:
        raise MessageError(f"message is a {actual}, not a {ros_type}")
    msg = _with_numpy_arrays(msg, actual)
    try:
        return bytes(TYPESTORE.serialize_cdr(msg, actual))
    except Exception as exc:  # rosbags' generated code raises struct, type and attribute errors
        raise MessageError(f"cannot serialize {actual}: {exc}") from exc


def deserialize(cdr: bytes | bytearray | memoryview, ros_type: str) -> Any:
    """Deserialize CDR bytes (with encapsulation header) into a message object.

    Primitive arrays of the result may be read-only views into ``cdr``.

    Raises:
        MessageError: The bytes are not a valid ``ros_type`` message.
    """
    canonical = normalize_type_name(ros_type)
    try:
        return TYPESTORE.deserialize_cdr(cdr, canonical)
    except Exception as exc:
        raise MessageError(f"cannot deserialize {len(cdr)} bytes as {canonical}: {exc}") from exc


def stamp_from_ns(stamp_ns: int) -> Any:
    """Return a ``builtin_interfaces/msg/Time`` for a non-negative nanosecond time."""
    if not 0 <= stamp_ns <= _MAX_STAMP_NS:
        raise MessageError(f"stamp {stamp_ns} ns is outside builtin_interfaces/Time's range")
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return TYPESTORE.types[TIME](sec=sec, nanosec=nanosec)


def ns_from_stamp(stamp: Any) -> int:
    """Return the nanoseconds since the epoch of a ``builtin_interfaces/msg/Time``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def make_header(stamp_ns: int, frame_id: str) -> Any:
    """Return a ``std_msgs/msg/Header``."""
    return TYPESTORE.types[HEADER](stamp=stamp_from_ns(stamp_ns), frame_id=frame_id)


def make_string(text: str) -> Any:
    """Return a ``std_msgs/msg/String``."""
    return TYPESTORE.types[STRING](data=text)


def _check_finite(what: str, *values: float) -> None:
    if not all(math.isfinite(value) for value in values):
        raise MessageError(f"{what} must be finite, got {values}")


def _detection_2d(header: Any, detection: Detection) -> Any:
    types = TYPESTORE.types
    label, score, bbox, track_id = detection
    x_min, y_min, x_max, y_max = (float(value) for value in bbox)
    _check_finite(f"box of {label!r}", x_min, y_min, x_max, y_max)
    _check_finite(f"score of {label!r}", float(score))
    if x_max < x_min or y_max < y_min:
        raise MessageError(f"box of {label!r} is not (x_min, y_min, x_max, y_max): {bbox}")
    pose = types["geometry_msgs/msg/PoseWithCovariance"](
        pose=types["geometry_msgs/msg/Pose"](
            position=types[POINT](x=0.0, y=0.0, z=0.0),
            orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        ),
        covariance=np.zeros(36, dtype=np.float64),
    )
    hypothesis = types["vision_msgs/msg/ObjectHypothesisWithPose"](
        hypothesis=types["vision_msgs/msg/ObjectHypothesis"](class_id=label, score=float(score)),
        pose=pose,
    )
    center = types["vision_msgs/msg/Pose2D"](
        position=types["vision_msgs/msg/Point2D"](x=(x_min + x_max) / 2.0, y=(y_min + y_max) / 2.0),
        theta=0.0,
    )
    box = types["vision_msgs/msg/BoundingBox2D"](
        center=center, size_x=x_max - x_min, size_y=y_max - y_min
    )
    return types["vision_msgs/msg/Detection2D"](
        header=header,
        results=[hypothesis],
        bbox=box,
        id="" if track_id is None else str(track_id),
    )


def make_detection_array(header: Any, detections: Iterable[Detection | tuple[Any, ...]]) -> Any:
    """Return a ``vision_msgs/msg/Detection2DArray``.

    Each detection becomes one ``Detection2D`` with a single hypothesis
    (``class_id`` = label), a centre/size box in pixels, and ``id`` = track ID
    (empty when untracked). Every detection shares ``header``.

    Args:
        header: ``std_msgs/msg/Header`` of the source image.
        detections: ``(label, score, (x_min, y_min, x_max, y_max), track_id)`` items.
    """
    items = [_detection_2d(header, Detection(*detection)) for detection in detections]
    return TYPESTORE.types[DETECTION_2D_ARRAY](header=header, detections=items)


def make_label_info(header: Any, class_names: Sequence[str], threshold: float) -> Any:
    """Return a ``vision_msgs/msg/LabelInfo``: class ``k + 1`` is ``class_names[k]``.

    Class ID 0 is left free for "no class", as in an ID image.
    """
    if len(class_names) >= 2**16:
        raise MessageError(f"LabelInfo holds at most 65535 classes, got {len(class_names)}")
    types = TYPESTORE.types
    class_map = [
        types["vision_msgs/msg/VisionClass"](class_id=index + 1, class_name=str(name))
        for index, name in enumerate(class_names)
    ]
    return types[LABEL_INFO](header=header, class_map=class_map, threshold=float(threshold))


def make_diagnostics(
    header: Any | int,
    name: str,
    level: DiagnosticLevel | int,
    message: str,
    values: Mapping[str, str],
    hardware_id: str = "",
) -> Any:
    """Return a ``diagnostic_msgs/msg/DiagnosticArray`` holding one status.

    Args:
        header: A ``std_msgs/msg/Header`` or a stamp in nanoseconds.
        name: Status name, e.g. ``"seem_ros: segmentation"``.
        level: One of :class:`DiagnosticLevel`.
        message: Human-readable summary.
        values: Key/value pairs; values are converted with ``str``.
        hardware_id: Optional hardware identifier.
    """
    types = TYPESTORE.types
    if isinstance(header, int):
        header = make_header(header, "")
    try:
        level = DiagnosticLevel(level)
    except ValueError as exc:
        raise MessageError(f"diagnostic level must be 0..3, got {level}") from exc
    key_values = [
        types["diagnostic_msgs/msg/KeyValue"](key=str(key), value=str(value))
        for key, value in values.items()
    ]
    status = types["diagnostic_msgs/msg/DiagnosticStatus"](
        level=int(level), name=name, message=message, hardware_id=hardware_id, values=key_values
    )
    return types[DIAGNOSTIC_ARRAY](header=header, status=[status])


def make_point_stamped(header: Any, x: float, y: float, z: float = 0.0) -> Any:
    """Return a ``geometry_msgs/msg/PointStamped`` (e.g. a clicked image point)."""
    _check_finite("point", x, y, z)
    point = TYPESTORE.types[POINT](x=float(x), y=float(y), z=float(z))
    return TYPESTORE.types[POINT_STAMPED](header=header, point=point)


def _float_array(name: str, values: Sequence[float] | np.ndarray, size: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != size:
        raise MessageError(f"camera info {name} needs {size} values, got {array.size}")
    return array


def make_camera_info(
    header: Any,
    width: int,
    height: int,
    k: Sequence[float] | np.ndarray,
    *,
    d: Sequence[float] | np.ndarray = (),
    distortion_model: str = "plumb_bob",
    r: Sequence[float] | np.ndarray | None = None,
    p: Sequence[float] | np.ndarray | None = None,
) -> Any:
    """Return a ``sensor_msgs/msg/CameraInfo``.

    Args:
        header: Header of the camera frame.
        width: Image width in pixels.
        height: Image height in pixels.
        k: 3x3 intrinsic matrix (9 values, row-major).
        d: Distortion coefficients (empty for an ideal camera).
        distortion_model: Distortion model name.
        r: 3x3 rectification matrix; identity by default.
        p: 3x4 projection matrix; ``[K | 0]`` by default.
    """
    if width <= 0 or height <= 0:
        raise MessageError(f"camera info size must be positive, got {width}x{height}")
    k_array = _float_array("k", k, 9)
    r_array = np.eye(3).reshape(-1) if r is None else _float_array("r", r, 9)
    if p is None:
        p_array = np.hstack([k_array.reshape(3, 3), np.zeros((3, 1))]).reshape(-1)
    else:
        p_array = _float_array("p", p, 12)
    types = TYPESTORE.types
    roi = types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return types[CAMERA_INFO](
        header=header,
        height=int(height),
        width=int(width),
        distortion_model=distortion_model,
        d=np.asarray(d, dtype=np.float64).reshape(-1),
        k=k_array,
        r=r_array,
        p=p_array,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
