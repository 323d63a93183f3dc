"""The SEEM node over Cyclone DDS directly: ROS 2 on the wire, no ROS installation needed.

A thin pipe around :class:`~seem_ros.ros.node_core.NodeCore`: a
:class:`~seem_ros.ros.dds.RawSubscriber` per input hands CDR bytes to the core, a
:class:`~seem_ros.ros.dds.RawPublisher` per output sends what the core emits, and
``~/reset`` / ``~/clear_clicks`` are rmw_cyclonedds-style ``std_srvs/Trigger`` services. TF for
``/clicked_point`` comes from ``/tf`` and ``/tf_static`` through a small
:class:`~seem_ros.ros.tf_buffer.TfBuffer`.

Names resolve as in ROS 2: relative in the node's namespace, ``~/`` under the node, remaps
``from:=to`` (``image:=/camera/image_raw``) as on a ``ros2 run`` command line. Unless remapped
themselves, ``image/compressed`` and rqt_image_view's ``<image>_mouse_left`` follow the image
topic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from functools import partial

from seem_ros.ros import messages
from seem_ros.ros.dds import (
    DEFAULT,
    SENSOR_DATA,
    DdsContext,
    QosProfile,
    RawPublisher,
    RawServiceServer,
    RawSubscriber,
)
from seem_ros.ros.dds.names import resolve_name
from seem_ros.ros.dds.qos import Durability, Reliability
from seem_ros.ros.node_core import (
    INPUTS,
    OUTPUTS,
    SERVICES,
    Endpoint,
    NodeCore,
    active_inputs,
)
from seem_ros.ros.params import NODE_NAME, NodeParams
from seem_ros.ros.tf_buffer import TfBuffer
from seem_ros.segmenter import Segmenter

LOG = logging.getLogger(__name__)
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
TF_QOS = QosProfile(Reliability.RELIABLE, 100, Durability.VOLATILE)
TF_STATIC_QOS = QosProfile(Reliability.RELIABLE, 100, Durability.TRANSIENT_LOCAL)
IMAGE_OUTPUT_QOS = QosProfile(Reliability.RELIABLE, 5, Durability.VOLATILE)


def parse_remaps(rules: Iterable[str]) -> dict[str, str]:
    """``["image:=/camera/image_raw"]`` -> ``{"image": "/camera/image_raw"}``.

    Raises:
        ValueError: A rule is not ``from:=to`` with both sides non-empty.
    """
    remaps: dict[str, str] = {}
    for rule in rules:
        source, separator, target = rule.partition(":=")
        if not separator or not source.strip() or not target.strip():
            raise ValueError(f"remap {rule!r} must look like 'from:=to', e.g. image:=/camera/image")
        remaps[source.strip()] = target.strip()
    return remaps


def resolve_topics(
    remaps: Mapping[str, str], *, namespace: str = "/", node_name: str = NODE_NAME
) -> dict[str, str]:
    """Fully qualified name of every input, output and service, by core key.

    A remap applies when its left side equals the endpoint's default name, as written or
    resolved (``image`` or ``/image`` in the root namespace).

    Raises:
        ValueError: A remap or the namespace makes an invalid ROS name.
    """

    def resolve(name: str) -> str:
        return resolve_name(name, namespace, node_name)

    resolved_remaps = {resolve(source): target for source, target in remaps.items()}

    def remapped(endpoint: Endpoint) -> str | None:
        target = remaps.get(endpoint.name) or resolved_remaps.get(resolve(endpoint.name))
        return resolve(target) if target is not None else None

    names = {e.key: remapped(e) or resolve(e.name) for e in (*INPUTS, *OUTPUTS, *SERVICES)}
    by_key = {e.key: e for e in INPUTS}
    image = names["image"]
    if remapped(by_key["image/compressed"]) is None:
        names["image/compressed"] = f"{image}/compressed"
    if remapped(by_key["image_mouse_left"]) is None:
        names["image_mouse_left"] = f"{image}_mouse_left"
    return names


class DdsNode:
    """The SEEM node on one DDS participant; runs until :meth:`close`.

    Args:
        segmenter: The loaded model.
        params: Node parameters.
        domain_id: ROS domain; default ``$ROS_DOMAIN_ID``, else 0.
        localhost_only: Keep traffic on 127.0.0.1; default ``$ROS_LOCALHOST_ONLY``.
        namespace: Node namespace.
        node_name: Node name (``~/`` services live under it).
        remaps: ``{from: to}`` topic remaps.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        params: NodeParams,
        *,
        domain_id: int | None = None,
        localhost_only: bool | None = None,
        namespace: str = "/",
        node_name: str = NODE_NAME,
        remaps: Mapping[str, str] | None = None,
    ) -> None:
        self.topics = resolve_topics(remaps or {}, namespace=namespace, node_name=node_name)
        self.context = DdsContext(domain_id, localhost_only=localhost_only, namespace=namespace)
        self.tf = TfBuffer()
        self._inputs: list[RawSubscriber | RawServiceServer] = []
        self.core: NodeCore | None = None
        try:
            self._publishers = {
                endpoint.key: RawPublisher(
                    self.context,
                    self.topics[endpoint.key],
                    endpoint.ros_type,
                    _output_qos(endpoint),
                )
                for endpoint in OUTPUTS
            }
            self.core = NodeCore(segmenter, params, self._publish, transform_lookup=self.tf.lookup)
            self._open_inputs(self.core, params)
        except Exception:
            self.close()
            raise
        LOG.info(
            "SEEM node on DDS domain %d%s: %s",
            self.context.domain_id,
            " (localhost only)" if self.context.localhost_only else "",
            ", ".join(f"{key}={name}" for key, name in self.topics.items()),
        )

    def _open_inputs(self, core: NodeCore, params: NodeParams) -> None:
        sensor_qos = SENSOR_DATA.with_reliability(params.qos_reliability)
        for endpoint in active_inputs(params):
            callback = partial(self._on_message, core, endpoint.key)
            qos = sensor_qos if endpoint.sensor else DEFAULT
            self._inputs.append(
                RawSubscriber(
                    self.context, self.topics[endpoint.key], endpoint.ros_type, callback, qos
                )
            )
        for topic, static, qos in (("/tf", False, TF_QOS), ("/tf_static", True, TF_STATIC_QOS)):
            callback = partial(self._on_tf, core, static)
            self._inputs.append(RawSubscriber(self.context, topic, TF_MESSAGE, callback, qos))
        for endpoint in SERVICES:
            handler = partial(core.handle_service, endpoint.key)
            self._inputs.append(
                RawServiceServer(
                    self.context, self.topics[endpoint.key], endpoint.ros_type, handler
                )
            )

    @staticmethod
    def _on_message(core: NodeCore, key: str, cdr: bytes, source_timestamp_ns: int) -> None:
        core.handle(key, cdr)

    def _on_tf(self, core: NodeCore, static: bool, cdr: bytes, source_timestamp_ns: int) -> None:
        try:
            self.tf.add_message(messages.deserialize(cdr, TF_MESSAGE), static=static)
        except messages.MessageError as error:
            core.counters.increment("malformed_message")
            LOG.warning("%s: %s", "/tf_static" if static else "/tf", error)

    def _publish(self, key: str, ros_type: str, cdr: bytes) -> None:
        publisher = self._publishers.get(key)
        if publisher is not None:
            publisher.publish(cdr)

    def _close_inputs(self) -> None:
        for endpoint in reversed(self._inputs):
            endpoint.close()
        self._inputs.clear()

    def spin(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (the work happens on background threads)."""
        stop.wait()

    def close(self) -> None:
        """Stop taking input, let the frame in progress finish, then leave the domain."""
        self._close_inputs()
        if self.core is not None:
            self.core.close()
        self.context.close()

    def __enter__(self) -> DdsNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _output_qos(endpoint: Endpoint) -> QosProfile:
    return IMAGE_OUTPUT_QOS if endpoint.ros_type == messages.IMAGE else DEFAULT
