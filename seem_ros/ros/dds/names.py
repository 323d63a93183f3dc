"""ROS 2 name mangling for DDS, as rmw_cyclonedds_cpp and rmw_fastrtps do it.

A ROS topic ``/seem/detections`` is the DDS topic ``rt/seem/detections``; a
service ``/seem/reset`` is the request topic ``rq/seem/resetRequest`` plus the
reply topic ``rr/seem/resetReply``. A ROS type ``sensor_msgs/msg/Image`` is the
DDS type ``sensor_msgs::msg::dds_::Image_`` and the request half of the service
``std_srvs/srv/Trigger`` is ``std_srvs::srv::dds_::Trigger_Request_``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

TOPIC_PREFIX = "rt"
REQUEST_PREFIX = "rq"
REPLY_PREFIX = "rr"

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_NAME = re.compile(r"([A-Za-z][A-Za-z0-9_]*)/(msg|srv|action)/([A-Za-z][A-Za-z0-9_]*)")


class ServiceTopics(NamedTuple):
    """DDS topic names of one ROS service."""

    request: str
    reply: str


class ServiceTypes(NamedTuple):
    """ROS type names (``pkg/srv/Name_Request``) and DDS type names of one service."""

    request_ros: str
    response_ros: str
    request_dds: str
    response_dds: str


def _check_tokens(name: str, what: str) -> None:
    for token in name.strip("/").split("/"):
        if not _TOKEN.fullmatch(token):
            raise ValueError(
                f"invalid ROS {what} {name!r}: token {token!r} must be letters, digits and "
                "underscores and must not start with a digit"
            )


def resolve_name(name: str, namespace: str = "/", node_name: str | None = None) -> str:
    """Return the fully qualified ROS name of ``name`` as seen from ``namespace``.

    Relative names are placed under ``namespace``; ``~/x`` is placed under the
    node (``namespace/node_name/x``) and therefore needs ``node_name``.

    Raises:
        ValueError: ``name``, ``namespace`` or ``node_name`` is not a valid ROS name.
    """
    if not namespace.startswith("/"):
        raise ValueError(f"namespace {namespace!r} must be absolute (start with '/')")
    if namespace != "/":
        if namespace.endswith("/"):
            raise ValueError(f"namespace {namespace!r} must not end with '/'")
        _check_tokens(namespace, "namespace")
    if not name:
        raise ValueError("ROS name must not be empty")
    if name.startswith("~"):
        if node_name is None:
            raise ValueError(f"private name {name!r} needs a node name to resolve")
        _check_tokens(node_name, "node name")
        base = f"{namespace.rstrip('/')}/{node_name}"
        name = base if name == "~" else f"{base}/{name.removeprefix('~/')}"
    elif not name.startswith("/"):
        name = f"{namespace.rstrip('/')}/{name}"
    if name.endswith("/") or "//" in name:
        raise ValueError(f"invalid ROS name {name!r}: no empty tokens or trailing '/'")
    _check_tokens(name, "name")
    return name


def topic_name(name: str, namespace: str = "/", node_name: str | None = None) -> str:
    """DDS topic name of a ROS topic: ``image`` in ``/`` -> ``rt/image``."""
    return TOPIC_PREFIX + resolve_name(name, namespace, node_name)


def service_topic_names(
    name: str, namespace: str = "/", node_name: str | None = None
) -> ServiceTopics:
    """DDS request and reply topic names of a ROS service."""
    resolved = resolve_name(name, namespace, node_name)
    return ServiceTopics(
        request=f"{REQUEST_PREFIX}{resolved}Request", reply=f"{REPLY_PREFIX}{resolved}Reply"
    )


def dds_type_name(ros_type: str) -> str:
    """DDS type name of a ROS type: ``sensor_msgs/msg/Image`` -> ``sensor_msgs::msg::dds_::Image_``.

    Raises:
        ValueError: ``ros_type`` is not of the form ``pkg/msg/Name`` (or ``srv``, ``action``).
    """
    match = _TYPE_NAME.fullmatch(ros_type)
    if match is None:
        raise ValueError(f"invalid ROS type name {ros_type!r}; expected 'pkg/msg/Name'")
    package, kind, type_name = match.groups()
    return f"{package}::{kind}::dds_::{type_name}_"


def service_type_names(srv_type: str) -> ServiceTypes:
    """ROS and DDS type names of the request and response of ``pkg/srv/Name``.

    Raises:
        ValueError: ``srv_type`` is not of the form ``pkg/srv/Name``.
    """
    match = _TYPE_NAME.fullmatch(srv_type)
    if match is None or match.group(2) != "srv":
        raise ValueError(f"invalid ROS service type {srv_type!r}; expected 'pkg/srv/Name'")
    request_ros = f"{srv_type}_Request"
    response_ros = f"{srv_type}_Response"
    return ServiceTypes(
        request_ros=request_ros,
        response_ros=response_ros,
        request_dds=dds_type_name(request_ros),
        response_dds=dds_type_name(response_ros),
    )
