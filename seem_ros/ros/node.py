"""The SEEM ROS 2 node: an rclpy lifecycle node around :class:`~seem_ros.ros.node_core.NodeCore`.

One node for every way of running it: ``ros2 run seem_ros seem_node`` / ``ros2 launch`` on a
robot with ROS 2 from apt, and ``seem-ros node`` with ROS 2 Jazzy from the PyPI wheels
(``tools/setup_ros.py``). The node only wires: subscriptions are ``raw=True`` (the core gets
the serialized bytes), publishers publish the bytes the core serialized, the two
``std_srvs/Trigger`` services call the core. Names follow ROS 2 (relative in the node's
namespace, ``~/`` under the node, ``--ros-args -r image:=/camera/image_raw`` remaps). Unless
remapped themselves, ``image/compressed`` and rqt_image_view's ``<image>_mouse_left`` follow the
image topic, and ``camera_info`` sits beside it, as image_transport does
(``/camera/image_raw`` -> ``/camera/camera_info``).

Lifecycle (yolo_ros style): *configure* reads the parameters, loads the model and creates the
publishers, *activate* subscribes and serves, *deactivate* stops taking input, *cleanup*
releases the model, *shutdown* does what is left. With ``autostart`` (default true) the node
configures and activates itself, so ``ros2 run`` / ``ros2 launch`` need no lifecycle manager.

Optional ROS packages degrade with one log line: without ``tf2_ros`` the node keeps its own
:class:`~seem_ros.ros.tf_buffer.TfBuffer` fed from ``/tf`` and ``/tf_static``.

Importing this module needs no ROS; rclpy is imported by the functions that use it.
"""

from __future__ import annotations

import faulthandler
import importlib
import logging
import posixpath
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from seem_ros.ros import messages
from seem_ros.ros.node_core import OUTPUTS, SERVICES, Endpoint, NodeCore, active_inputs
from seem_ros.ros.params import NODE_NAME, NodeParams, ParamError, ParamSpec, param_specs
from seem_ros.ros.projection import transform_matrix
from seem_ros.ros.tf_buffer import TfBuffer

AUTOSTART = "autostart"
LABEL_INFO_TOPIC = "seem/label_info"
EXIT_CANNOT_START = 2
LOG = logging.getLogger("seem_ros.node")
MISSING_INTERFACES_HELP = (
    "with ROS 2 from pip run `python tools/setup_ros.py`; with ROS 2 from apt install "
    "ros-$ROS_DISTRO-vision-msgs"
)


class NodeStartError(RuntimeError):
    """The node cannot start: bad parameters, weights, backend or missing ROS packages."""


def ros_interface(ros_type: str) -> Any:
    """The rclpy class of ``pkg/msg/Name`` or ``pkg/srv/Name``.

    Raises:
        NodeStartError: The package is not installed.
    """
    package, kind, name = ros_type.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as error:
        raise NodeStartError(
            f"ROS interface {ros_type} is not installed ({error}); {MISSING_INTERFACES_HELP}"
        ) from error


class RosLogHandler(logging.Handler):
    """Forwards Python logging (the core, the model loader) to the node's rclpy logger."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self._ros_logger.error(message)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(message)
        elif record.levelno >= logging.INFO:
            self._ros_logger.info(message)
        else:
            self._ros_logger.debug(message)


def parameter_descriptor(spec: ParamSpec) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` of one parameter: description and range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.minimum is not None and spec.maximum is not None:
        if spec.value_type is int:
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)
            ]
        elif spec.value_type is float:
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0
                )
            ]
    return descriptor


def beside_image(image_topic: str, name: str) -> str:
    """``camera_info`` next to the image, as image_transport puts it:
    ``/camera/image_raw`` -> ``/camera/camera_info``."""
    return posixpath.join(posixpath.dirname(image_topic) or "/", name)


def input_topics(node: Any, params: NodeParams) -> dict[str, str]:
    """The resolved name of every active input, by core key.

    ``image/compressed``, ``image_mouse_left`` and ``camera_info`` follow the image topic unless
    they are remapped themselves.
    """

    def remapped(name: str) -> bool:
        return node.resolve_topic_name(name) != node.resolve_topic_name(name, only_expand=True)

    names = {e.key: node.resolve_topic_name(e.name) for e in active_inputs(params)}
    image = node.resolve_topic_name("image")
    derived = {
        "image/compressed": f"{image}/compressed",
        "image_mouse_left": f"{image}_mouse_left",
        "camera_info": beside_image(image, "camera_info"),
    }
    for key, name in derived.items():
        if key in names and not remapped(key):
            names[key] = name
    return names


def tf2_lookup(buffer: Any) -> Any:
    """A :data:`~seem_ros.ros.projection.TransformLookup` over a ``tf2_ros.Buffer``: at the
    stamp, else the latest transform, else None."""
    from rclpy.time import Time
    from tf2_ros import TransformException

    def lookup(target_frame: str, source_frame: str, stamp_ns: int) -> Any:
        for when in (Time(nanoseconds=stamp_ns), Time()):
            try:
                stamped = buffer.lookup_transform(target_frame, source_frame, when)
            except TransformException:
                continue
            t, r = stamped.transform.translation, stamped.transform.rotation
            return transform_matrix((t.x, t.y, t.z), (r.x, r.y, r.z, r.w))
        return None

    return lookup


def create_node(*, allow_untrained: bool = False, **node_kwargs: Any) -> Any:
    """The SEEM lifecycle node (``rclpy.init`` must have been called).

    Args:
        allow_untrained: Without any model, run random ``tiny`` weights (plumbing only).
        node_kwargs: ``rclpy`` node arguments (``node_name``, ``namespace``, ``context``, ...).

    Raises:
        NodeStartError: A parameter override (``--params-file``, ``-p``) is invalid.
    """
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.exceptions import ParameterException
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
    from rclpy.qos import (
        DurabilityPolicy,
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
    )
    from rclpy.serialization import deserialize_message, serialize_message

    class SeemNode(LifecycleNode):
        def __init__(self) -> None:
            super().__init__(node_kwargs.pop("node_name", NODE_NAME), **node_kwargs)
            try:
                for spec in param_specs():
                    self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
                self.declare_parameter(AUTOSTART, True)
                self.read_params()
            except (ParameterException, ParamError) as error:
                self.destroy_node()
                raise NodeStartError(f"invalid parameter: {error}") from error
            # The library's log lines go to the ROS logger (and /rosout) only, not twice.
            self._log_handler = RosLogHandler(self.get_logger())
            library_log = logging.getLogger("seem_ros")
            library_log.addHandler(self._log_handler)
            library_log.setLevel(logging.INFO)
            self._log_propagated = library_log.propagate
            library_log.propagate = False
            self.core: NodeCore | None = None
            self._outputs: dict[str, Any] = {}
            self._label_info: Any = None
            self._labels_cdr: bytes | None = None  # the newest, published on activate
            # Not "_services" or "_subscriptions": rclpy's Node keeps its own under those names.
            self._seem_inputs: list[Any] = []
            self._seem_services: list[Any] = []
            self._tf: list[Any] = []
            self._active = False
            self.add_on_set_parameters_callback(self._on_set_parameters)

        def read_params(self) -> NodeParams:
            """The node's parameters as they are now (validated)."""
            values = {spec.name: self.get_parameter(spec.name).value for spec in param_specs()}
            return NodeParams().replace(**values)

        # -------------------------------------------------------------- lifecycle
        def on_configure(self, state: Any) -> Any:
            from seem_ros.ros.pipeline import load_segmenter_for

            try:
                params = self.read_params()
                types = {e.key: ros_interface(e.ros_type) for e in (*OUTPUTS, *SERVICES)}
                types[LABEL_INFO_TOPIC] = ros_interface(messages.LABEL_INFO)
                segmenter = load_segmenter_for(params, allow_untrained=allow_untrained)
            except Exception as error:  # bad parameters, weights, backend, packages: say why
                self.get_logger().error(f"cannot configure the SEEM node: {error}")
                return TransitionCallbackReturn.FAILURE
            self._outputs = {
                e.key: self.create_publisher(types[e.key], e.name, _output_qos(e)) for e in OUTPUTS
            }
            latched = QoSProfile(
                depth=1,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            self._label_info = self.create_publisher(
                types[LABEL_INFO_TOPIC], LABEL_INFO_TOPIC, latched
            )
            self.core = NodeCore(
                segmenter,
                params,
                self._publish,
                transform_lookup=self._start_tf(),
                clock_ns=lambda: self.get_clock().now().nanoseconds,
                on_labels=self._publish_labels,
            )
            self.get_logger().info(f"configured: {segmenter.engine.describe()}")
            return TransitionCallbackReturn.SUCCESS

        def on_activate(self, state: Any) -> Any:
            assert self.core is not None
            params = self.core.params
            sensor_qos = QoSProfile(
                history=qos_profile_sensor_data.history,
                depth=qos_profile_sensor_data.depth,
                durability=qos_profile_sensor_data.durability,
                reliability=ReliabilityPolicy.RELIABLE
                if params.qos_reliability == "reliable"
                else ReliabilityPolicy.BEST_EFFORT,
            )
            # Prompts: reliable and volatile, depth 10. Transient local would refuse every
            # volatile publisher (ros2 topic pub's default and most nodes'): no match at all.
            prompt_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            names = input_topics(self, params)
            for endpoint in active_inputs(params):
                self._seem_inputs.append(
                    self.create_subscription(
                        ros_interface(endpoint.ros_type),
                        names[endpoint.key],
                        _handler(self.core, endpoint.key),
                        sensor_qos if endpoint.sensor else prompt_qos,
                        raw=True,
                    )
                )
            for endpoint in SERVICES:
                self._seem_services.append(
                    self.create_service(
                        ros_interface(endpoint.ros_type),
                        endpoint.name,
                        self._service_handler(endpoint),
                    )
                )
            self.get_logger().info(
                "active: " + ", ".join(f"{key} <- {name}" for key, name in names.items())
            )
            self._active = True
            if self._labels_cdr is not None:
                self._label_info.publish(self._labels_cdr)
            return super().on_activate(state)

        def on_deactivate(self, state: Any) -> Any:
            self._stop_inputs()
            return super().on_deactivate(state)

        def on_cleanup(self, state: Any) -> Any:
            self._release()
            return TransitionCallbackReturn.SUCCESS

        def on_shutdown(self, state: Any) -> Any:
            self._stop_inputs()
            self._release()
            library_log = logging.getLogger("seem_ros")
            library_log.removeHandler(self._log_handler)
            library_log.propagate = self._log_propagated
            return TransitionCallbackReturn.SUCCESS

        # -------------------------------------------------------------- plumbing
        def _stop_inputs(self) -> None:
            self._active = False
            for subscription in self._seem_inputs:
                self.destroy_subscription(subscription)
            for service in self._seem_services:
                self.destroy_service(service)
            self._seem_inputs, self._seem_services = [], []

        def _release(self) -> None:
            if self.core is not None:
                self.core.close()
                self.core = None
            for publisher in [*self._outputs.values(), self._label_info]:
                if publisher is not None:
                    self.destroy_publisher(publisher)
            self._outputs, self._label_info, self._labels_cdr = {}, None, None
            for entity in self._tf:
                if hasattr(entity, "unregister"):
                    entity.unregister()
                elif not isinstance(entity, TfBuffer):
                    self.destroy_subscription(entity)
            self._tf = []

        def _start_tf(self) -> Callable[[str, str, int], Any] | None:
            """tf2_ros when installed, else our own buffer on /tf and /tf_static."""
            try:
                from tf2_ros import Buffer, TransformListener
            except ImportError:
                pass
            else:
                buffer = Buffer()
                self._tf = [TransformListener(buffer, self, spin_thread=True)]
                return tf2_lookup(buffer)
            try:
                tf_type = ros_interface(messages.TF_MESSAGE)
            except NodeStartError as error:
                self.get_logger().warning(
                    f"neither tf2_ros nor tf2_msgs is installed: /clicked_point works only in "
                    f"the camera's own frame ({error})"
                )
                return None
            self.get_logger().info(
                "tf2_ros is not installed: using seem_ros's own TF buffer on /tf and /tf_static"
            )
            buffer = TfBuffer()
            dynamic = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            static = QoSProfile(
                depth=100,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            topics = (("/tf", False, dynamic), ("/tf_static", True, static))
            self._tf = [
                buffer,
                *(
                    self.create_subscription(
                        tf_type, topic, self._tf_handler(buffer, is_static), qos, raw=True
                    )
                    for topic, is_static, qos in topics
                ),
            ]
            return buffer.lookup

        def _tf_handler(self, buffer: TfBuffer, static: bool) -> Callable[[bytes], None]:
            def on_tf(cdr: bytes) -> None:
                try:
                    buffer.add_message(
                        messages.deserialize(cdr, messages.TF_MESSAGE), static=static
                    )
                except messages.MessageError as error:
                    if self.core is not None:
                        self.core.counters.increment("malformed_message")
                    LOG.warning("%s: %s", "/tf_static" if static else "/tf", error)

            return on_tf

        def _publish(self, key: str, ros_type: str, cdr: bytes) -> None:
            publisher = self._outputs.get(key)
            if self._active and publisher is not None:
                publisher.publish(cdr)

        def _publish_labels(self, cdr: bytes) -> None:
            self._labels_cdr = cdr
            if self._active and self._label_info is not None:
                self._label_info.publish(cdr)

        def _service_handler(self, endpoint: Endpoint) -> Any:
            response_type = ros_interface(endpoint.ros_type).Response

            def serve(request: Any, response: Any) -> Any:
                core = self.core
                if core is None:
                    response.success, response.message = False, "the node is not configured"
                    return response
                reply = core.handle_service(endpoint.key, serialize_message(request))
                return deserialize_message(reply, response_type)

            return serve

        def _on_set_parameters(self, parameters: list[Any]) -> Any:
            changes = {p.name: p.value for p in parameters if p.name != AUTOSTART}
            if not changes:
                return SetParametersResult(successful=True)
            try:
                if self.core is not None:
                    self.core.update_params(**changes)
                else:
                    self.read_params().replace(**changes)
            except ParamError as error:
                return SetParametersResult(successful=False, reason=str(error))
            return SetParametersResult(successful=True)

    return SeemNode()


def _handler(core: NodeCore, key: str) -> Callable[[bytes], None]:
    def on_message(cdr: bytes) -> None:
        core.handle(key, cdr)

    return on_message


def _output_qos(endpoint: Endpoint) -> int:
    return 5 if endpoint.ros_type == messages.IMAGE else 10


def run(args: Sequence[str], *, allow_untrained: bool = False, domain_id: int | None = None) -> int:
    """Run the node until shutdown (Ctrl-C, SIGTERM or the lifecycle's shutdown).

    Args:
        args: Command line with ROS arguments (``--ros-args --params-file f -r a:=b ...``).
        allow_untrained: Without any model, run random ``tiny`` weights.
        domain_id: ROS domain; default ``$ROS_DOMAIN_ID``.

    Returns:
        0 after a clean shutdown, 2 when the node cannot start (the reason is logged).
    """
    try:
        import rclpy
        from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
        from rclpy.lifecycle import TransitionCallbackReturn
    except ImportError as error:
        print(
            f"the SEEM node needs ROS 2 (rclpy): {error}. Without a system ROS 2, install it "
            f"from PyPI: pip install -e '.[ros]' && python tools/setup_ros.py",
            file=sys.stderr,
        )
        return EXIT_CANNOT_START
    # `kill -USR1 <pid>` prints every thread's stack: what a node that will not stop waits on
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    init_kwargs = {} if domain_id is None else {"domain_id": domain_id}
    rclpy.init(args=list(args), **init_kwargs)
    try:
        node = create_node(allow_untrained=allow_untrained)
    except NodeStartError as error:
        print(f"cannot start the SEEM node: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return EXIT_CANNOT_START
    exit_code = 0
    try:
        if node.get_parameter(AUTOSTART).value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                exit_code = EXIT_CANNOT_START  # on_configure said why
            else:
                node.trigger_activate()
        if exit_code == 0:
            executor = MultiThreadedExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node.core is not None:
            node.core.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """``seem_node`` (``ros2 run seem_ros seem_node --ros-args ...``)."""
    return run(sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
