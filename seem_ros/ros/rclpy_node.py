"""The SEEM node for robots with ROS 2: a lifecycle node over rclpy (the ``seem_node`` script).

A thin pipe around :class:`~seem_ros.ros.node_core.NodeCore`, like the DDS adapter:
subscriptions are ``raw=True`` (the core gets the serialized bytes), publishers publish the
bytes the core serialized, and the ``std_srvs/Trigger`` services are serialized for the core
too, so both adapters behave identically.

Lifecycle (yolo_ros style): *configure* reads the parameters and loads the model, *activate*
subscribes and serves, *deactivate* stops taking input, *cleanup* releases the model. With the
``autostart`` parameter (default true) the node configures and activates itself, so
``ros2 run`` / ``ros2 launch`` work without a lifecycle manager.

rclpy, tf2_ros and the message packages are imported inside functions only: importing this
module never needs ROS.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from seem_ros.ros.node_core import OUTPUTS, SERVICES, Endpoint, NodeCore, active_inputs
from seem_ros.ros.params import NODE_NAME, NodeParams, ParamError, ParamSpec, param_specs
from seem_ros.ros.projection import transform_matrix

AUTOSTART = "autostart"


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


def create_node(**node_kwargs: Any) -> Any:
    """The SEEM lifecycle node (``rclpy.init`` must have been called)."""
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.serialization import deserialize_message, serialize_message
    from rosidl_runtime_py.utilities import get_message, get_service

    class SeemNode(LifecycleNode):
        def __init__(self) -> None:
            super().__init__(node_kwargs.pop("node_name", NODE_NAME), **node_kwargs)
            for spec in param_specs():
                self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
            self.declare_parameter(AUTOSTART, True)
            self._log_handler = RosLogHandler(self.get_logger())
            logging.getLogger("seem_ros").addHandler(self._log_handler)
            logging.getLogger("seem_ros").setLevel(logging.INFO)
            self.core: NodeCore | None = None
            self._publishers_by_key: dict[str, Any] = {}
            self._inputs: list[Any] = []
            self._services: list[Any] = []
            self._tf: tuple[Any, Any] | None = None
            self._active = False
            self.add_on_set_parameters_callback(self._on_set_parameters)

        # -------------------------------------------------------------- lifecycle
        def on_configure(self, state: Any) -> Any:
            from tf2_ros import Buffer, TransformListener

            from seem_ros.ros.pipeline import load_segmenter_for

            try:
                params = NodeParams().replace(
                    **{spec.name: self.get_parameter(spec.name).value for spec in param_specs()}
                )
                segmenter = load_segmenter_for(params)
            except Exception as error:  # bad parameters, weights or backend: say why, fail
                self.get_logger().error(f"cannot configure the SEEM node: {error}")
                return TransitionCallbackReturn.FAILURE
            buffer = Buffer()
            self._tf = (buffer, TransformListener(buffer, self, spin_thread=True))
            self._publishers_by_key = {
                endpoint.key: self.create_publisher(
                    get_message(endpoint.ros_type), endpoint.name, _output_qos(endpoint)
                )
                for endpoint in OUTPUTS
            }
            self.core = NodeCore(
                segmenter,
                params,
                self._publish,
                transform_lookup=tf2_lookup(buffer),
                clock_ns=lambda: self.get_clock().now().nanoseconds,
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
            names = self._input_names()
            for endpoint in active_inputs(params):
                self._inputs.append(
                    self.create_subscription(
                        get_message(endpoint.ros_type),
                        names[endpoint.key],
                        _handler(self.core, endpoint.key),
                        sensor_qos if endpoint.sensor else 10,
                        raw=True,
                    )
                )
            for endpoint in SERVICES:
                self._services.append(
                    self.create_service(
                        get_service(endpoint.ros_type),
                        endpoint.name,
                        self._service_handler(endpoint),
                    )
                )
            self._active = True
            return super().on_activate(state)

        def on_deactivate(self, state: Any) -> Any:
            self._active = False
            for subscription in self._inputs:
                self.destroy_subscription(subscription)
            for service in self._services:
                self.destroy_service(service)
            self._inputs, self._services = [], []
            return super().on_deactivate(state)

        def on_cleanup(self, state: Any) -> Any:
            if self.core is not None:
                self.core.close()
                self.core = None
            for publisher in self._publishers_by_key.values():
                self.destroy_publisher(publisher)
            self._publishers_by_key = {}
            self._tf = None
            return TransitionCallbackReturn.SUCCESS

        def on_shutdown(self, state: Any) -> Any:
            if self._active:
                self.on_deactivate(state)
            self.on_cleanup(state)
            logging.getLogger("seem_ros").removeHandler(self._log_handler)
            return TransitionCallbackReturn.SUCCESS

        # -------------------------------------------------------------- plumbing
        def _input_names(self) -> dict[str, str]:
            """Input names; the compressed and mouse-click topics follow the image topic."""
            resolve = getattr(self, "resolve_topic_name", None)
            image = resolve("image") if resolve is not None else "image"
            names = {endpoint.key: endpoint.name for endpoint in active_inputs(self.core.params)}
            names["image/compressed"] = f"{image}/compressed"
            names["image_mouse_left"] = f"{image}_mouse_left"
            return names

        def _publish(self, key: str, ros_type: str, cdr: bytes) -> None:
            publisher = self._publishers_by_key.get(key)
            if self._active and publisher is not None:
                publisher.publish(cdr)

        def _service_handler(self, endpoint: Endpoint) -> Any:
            service_type = get_service(endpoint.ros_type)

            def serve(request: Any, response: Any) -> Any:
                assert self.core is not None
                reply = self.core.handle_service(endpoint.key, serialize_message(request))
                return deserialize_message(reply, service_type.Response)

            return serve

        def _on_set_parameters(self, parameters: list[Any]) -> Any:
            changes = {p.name: p.value for p in parameters if p.name != AUTOSTART}
            if self.core is None or not changes:
                return SetParametersResult(successful=True)
            try:
                self.core.update_params(**changes)
            except ParamError as error:
                return SetParametersResult(successful=False, reason=str(error))
            return SetParametersResult(successful=True)

    return SeemNode()


def _handler(core: NodeCore, key: str) -> Any:
    def on_message(cdr: bytes) -> None:
        core.handle(key, cdr)

    return on_message


def _output_qos(endpoint: Endpoint) -> int:
    return 5 if endpoint.ros_type.endswith("/Image") else 10


def main(argv: list[str] | None = None) -> int:
    """``seem_node``: run the lifecycle node until shutdown (Ctrl-C)."""
    try:
        import rclpy
        from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    except ImportError as error:
        print(
            f"seem_node needs ROS 2 (rclpy): {error}. Without ROS run `seem-ros node` instead.",
            file=sys.stderr,
        )
        return 2
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = create_node()
    exit_code = 0
    try:
        if node.get_parameter(AUTOSTART).value:
            node.trigger_configure()
            if node.core is None:
                exit_code = 2  # configure failed and said why
            else:
                node.trigger_activate()
        if exit_code == 0:
            executor = MultiThreadedExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
