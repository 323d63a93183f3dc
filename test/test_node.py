"""The SEEM ROS 2 node end to end: the real rclpy lifecycle node, real DDS traffic on loopback.

The node runs in its own process (``seem-ros node`` or ``seem_node --ros-args ...``) on ROS 2
Jazzy (the PyPI wheels set up by ``tools/setup_ros.py``, or a sourced ROS 2), on a random ROS
domain with localhost-only discovery. This test process is a separate rclpy participant: it
publishes frames and prompts, calls the node's services (its own, parameters, lifecycle) and
asserts on the detections, instance masks, overlays, label info and diagnostics that come
back. Some checks start one more client process, as ``ros2 topic pub --once`` would. The model
is the random-init ``tiny`` network saved to a real safetensors file, so assertions are about
structure, never mask quality.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import ListParameters, SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_payloads import (
    FRAME_ID,
    HEIGHT,
    WIDTH,
    boxes_cdr,
    camera_info_cdr,
    image_cdr,
    mask_cdr,
    mouse_cdr,
    point_stamped_cdr,
    raw_image_cdr,
    small_tiny_model,
    string_cdr,
)
from std_srvs.srv import Trigger

from seem_ros.commands.node import parse_remaps
from seem_ros.model.build import save_model
from seem_ros.ros import messages
from seem_ros.ros.node import NodeStartError, beside_image, ros_interface

START_TIMEOUT_S = 120.0
REPLY_TIMEOUT_S = 30.0
REPLY_ATTEMPTS = 3  # for requests that are safe to repeat: see RosClient.call
IMAGE_TOPIC = "/camera/image_raw"
INPUT_TOPICS = {
    IMAGE_TOPIC: messages.IMAGE,
    "image/compressed": messages.COMPRESSED_IMAGE,
    "/camera/camera_info": messages.CAMERA_INFO,
    f"{IMAGE_TOPIC}_mouse_left": messages.POINT,
    "prompt/point": messages.POINT_STAMPED,
    "prompt/boxes": messages.DETECTION_2D_ARRAY,
    "prompt/classes": messages.STRING,
    "prompt/refer": messages.STRING,
    "prompt/mask": messages.IMAGE,
    "/clicked_point": messages.POINT_STAMPED,
    "/tf_static": messages.TF_MESSAGE,
}
OUTPUT_TOPICS = {
    "seem/detections": messages.DETECTION_2D_ARRAY,
    "seem/instance_mask": messages.IMAGE,
    "seem/overlay": messages.IMAGE,
    "diagnostics": messages.DIAGNOSTIC_ARRAY,
    "seem/label_info": messages.LABEL_INFO,
}
NODE_PARAMETERS = {
    "backend": "torch",
    "device": "cpu",
    "diagnostics_period": 0.2,
    "max_image_pixels": 200 * 200,
    "max_clicks": 8,
}
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
_stamps = itertools.count(1_000_000_000, 1_000)


def random_domain() -> int:
    return random.randint(100, 230)


def node_environment(domain_id: int) -> dict[str, str]:
    return {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "OMP_NUM_THREADS": "1",
    }


def seem_ros_node_command(config: Path, model: Path, domain_id: int, *extra: str) -> list[str]:
    """``seem-ros node`` (what the ``seem-ros`` script runs)."""
    return [
        sys.executable,
        "-m",
        "seem_ros.cli",
        "node",
        "--config",
        str(config),
        "--model",
        str(model),
        "--domain-id",
        str(domain_id),
        "--localhost-only",
        *extra,
    ]


def seem_node_command(config: Path, model: Path, *ros_args: str) -> list[str]:
    """``seem_node --ros-args ...`` (what ``ros2 run`` / ``ros2 launch`` run)."""
    return [
        sys.executable,
        "-m",
        "seem_ros.ros.node",
        "--ros-args",
        "--params-file",
        str(config),
        "-p",
        f"model_path:={model}",
        *ros_args,
    ]


def save_tiny_model(folder: Path) -> Path:
    """The random-init ``tiny`` network at 64 px input (cheap on a shared CPU)."""
    model, card = small_tiny_model()
    return save_model(model, folder / "tiny.safetensors", card)


def write_config(folder: Path, **parameters: object) -> Path:
    """A parameter file keyed ``/**`` like ``config/seem.yaml``."""
    path = folder / "seem.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": parameters}}))
    return path


def label_of(detection: Any) -> str:
    return detection.results[0].hypothesis.class_id


def tf_static_cdr(parent: str, child: str, z: float) -> bytes:
    """One static transform: ``child`` sits ``z`` metres along ``parent``'s z axis."""
    types = messages.TYPESTORE.types
    transform = types["geometry_msgs/msg/TransformStamped"](
        header=messages.make_header(0, parent),
        child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=z),
            rotation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        ),
    )
    return messages.serialize(types[messages.TF_MESSAGE](transforms=[transform]))


# ---------------------------------------------------------------- the test process's side
class RosClient:
    """An rclpy participant of its own (own context, domain and executor thread)."""

    def __init__(self, domain_id: int, namespace: str = "/") -> None:
        self.namespace = namespace.rstrip("/")
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("seem_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()
        self._condition = threading.Condition()
        self.received: dict[str, list[Any]] = {topic: [] for topic in OUTPUT_TOPICS}
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.publishers = {
            topic: self.node.create_publisher(
                ros_interface(ros_type),
                self.name(topic),
                LATCHED if topic == "/tf_static" else reliable,
            )
            for topic, ros_type in INPUT_TOPICS.items()
        }
        self.subscriptions = [
            self.node.create_subscription(
                ros_interface(ros_type),
                self.name(topic),
                self._receiver(topic, ros_type),
                LATCHED if topic == "seem/label_info" else reliable,
                raw=True,
            )
            for topic, ros_type in OUTPUT_TOPICS.items()
        ]

    def name(self, topic: str) -> str:
        return topic if topic.startswith("/") else f"{self.namespace}/{topic}"

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context shuts down under us at close
            self.executor.spin()

    def _receiver(self, topic: str, ros_type: str) -> Callable[[bytes], None]:
        def receive(cdr: bytes) -> None:
            msg = messages.deserialize(cdr, ros_type)
            with self._condition:
                self.received[topic].append(msg)
                del self.received[topic][:-200]
                self._condition.notify_all()

        return receive

    # ------------------------------------------------------------ waiting
    def wait_for(self, condition: Callable[[], Any], timeout_s: float = REPLY_TIMEOUT_S) -> Any:
        with self._condition:
            return self._condition.wait_for(condition, timeout=timeout_s)

    def wait_connected(self, process: subprocess.Popen[bytes], topics: list[str]) -> bool:
        """Until the node subscribes to ``topics`` and publishes the outputs."""
        deadline = time.monotonic() + START_TIMEOUT_S

        def connected() -> bool:
            inputs = all(self.publishers[t].get_subscription_count() > 0 for t in topics)
            outputs = all(
                self.node.count_publishers(self.name(t)) > 0 for t in ("seem/detections",)
            )
            return inputs and outputs

        while not connected():
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    # ------------------------------------------------------------ talking
    def send(self, topic: str, cdr: bytes) -> None:
        self.publishers[topic].publish(cdr)

    def outputs_for(self, stamp_ns: int, timeout_s: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
        def matching() -> dict[str, Any] | None:
            found = {}
            for topic in ("seem/detections", "seem/instance_mask", "seem/overlay"):
                hits = [
                    m
                    for m in self.received[topic]
                    if messages.ns_from_stamp(m.header.stamp) == stamp_ns
                ]
                if not hits:
                    return None
                found[topic] = hits[-1]
            return found

        return self.wait_for(matching, timeout_s) or {}

    def frame(self, topic: str = IMAGE_TOPIC, cdr: bytes | None = None) -> dict[str, Any]:
        """Publish one frame and return its detections, instance mask and overlay."""
        stamp = next(_stamps)
        self.send(topic, image_cdr(stamp) if cdr is None else cdr(stamp))
        found = self.outputs_for(stamp)
        assert found, f"no outputs for the frame stamped {stamp} within {REPLY_TIMEOUT_S} s"
        return found

    def frame_until(self, done: Callable[[list[Any]], bool], attempts: int = 20) -> dict[str, Any]:
        """Publish frames until one's detections satisfy ``done`` (prompts sent just before
        travel on other topics, so they may be delivered after the next frame)."""
        for _ in range(attempts):
            outputs = self.frame()
            if done(list(outputs["seem/detections"].detections)):
                return outputs
        raise AssertionError(f"{attempts} frames, none as expected: {outputs['seem/detections']}")

    def counter(self, name: str) -> int:
        with self._condition:
            if not self.received["diagnostics"]:
                return 0
            values = self.received["diagnostics"][-1].status[0].values
        return next((int(kv.value) for kv in values if kv.key == name), 0)

    def diagnostics_values(self) -> dict[str, str]:
        assert self.wait_for(lambda: self.received["diagnostics"]), "no diagnostics"
        with self._condition:
            return {kv.key: kv.value for kv in self.received["diagnostics"][-1].status[0].values}

    def wait_counter_above(self, name: str, value: int) -> int:
        self.wait_for(lambda: self.counter(name) > value)
        return self.counter(name)

    def labels(self) -> list[str]:
        with self._condition:
            if not self.received["seem/label_info"]:
                return []
            info = self.received["seem/label_info"][-1]
        return [c.class_name for c in info.class_map]

    def call(
        self,
        service_type: Any,
        name: str,
        request: Any | None = None,
        *,
        idempotent: bool = True,
    ) -> Any:
        """Call a service and return its reply.

        ``wait_for_service`` only says the client has matched the server; the server may not
        yet have matched the client's reply reader, and DDS then drops the reply (a discovery
        race seen right after a node starts). A request that is safe to repeat is therefore
        re-sent if its reply does not come; one that is not (a lifecycle transition) is sent
        once, after a repeatable call has shown the replies get through.
        """
        client = self.node.create_client(service_type, self.name(name))
        attempts = REPLY_ATTEMPTS if idempotent else 1
        try:
            assert client.wait_for_service(timeout_sec=REPLY_TIMEOUT_S), f"no service {name}"
            for _ in range(attempts):
                future = client.call_async(request or service_type.Request())
                done = threading.Event()
                future.add_done_callback(lambda _, replied=done: replied.set())
                if done.wait(REPLY_TIMEOUT_S / attempts):
                    return future.result()
                client.remove_pending_request(future)
            raise AssertionError(f"{name} did not answer in {REPLY_TIMEOUT_S:.0f} s")
        finally:
            self.node.destroy_client(client)

    def set_parameter(self, node: str, name: str, value: object) -> Any:
        kinds = {
            bool: (ParameterType.PARAMETER_BOOL, "bool_value"),
            int: (ParameterType.PARAMETER_INTEGER, "integer_value"),
            float: (ParameterType.PARAMETER_DOUBLE, "double_value"),
            str: (ParameterType.PARAMETER_STRING, "string_value"),
        }
        kind, field = kinds[type(value)]
        parameter = Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))
        request = SetParameters.Request(parameters=[parameter])
        return self.call(SetParameters, f"{node}/set_parameters", request).results[0]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._spinner.join(timeout=5)


@dataclasses.dataclass
class RunningNode:
    process: subprocess.Popen[bytes]
    client: RosClient
    log_path: Path

    def log_mentions(self, text: str, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


@pytest.fixture(scope="module")
def ros_domain() -> Iterator[int]:
    """A random domain, discovery on this machine only, for this process's participants."""
    saved = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    yield random_domain()
    if saved is None:
        os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
    else:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = saved


def start_node(
    command: list[str], domain_id: int, folder: Path, namespace: str, wait_topics: list[str]
) -> RunningNode:
    log_path = folder / "node.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=node_environment(domain_id)
        )
    client = RosClient(domain_id, namespace)
    running = RunningNode(process, client, log_path)
    if wait_topics and not client.wait_connected(process, wait_topics):
        stop_node(running)
        pytest.fail(f"the node did not come up:\n{running.log()}")
    return running


def stop_node(running: RunningNode) -> int:
    running.client.close()
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGINT)
    try:
        return running.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        # what it is stuck on goes to its log, which the failing assertion prints
        running.process.send_signal(signal.SIGUSR1)
        time.sleep(2.0)
        running.process.kill()
        running.process.wait()
        return -9


@pytest.fixture(scope="module")
def node(ros_domain: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """``seem-ros node`` with the camera remapped: ``image:=/camera/image_raw``."""
    folder = tmp_path_factory.mktemp("node")
    config = write_config(folder, **NODE_PARAMETERS)
    command = seem_ros_node_command(
        config, save_tiny_model(folder), ros_domain, f"image:={IMAGE_TOPIC}"
    )
    running = start_node(command, ros_domain, folder, "/", [IMAGE_TOPIC, "prompt/point"])
    yield running
    assert stop_node(running) == 0, running.log()


@pytest.fixture(autouse=True)
def fresh_prompts(request: pytest.FixtureRequest) -> None:
    """Each test starts without standing prompts (the node process is shared)."""
    if "node" in request.fixturenames:
        assert request.getfixturevalue("node").client.call(Trigger, "/seem_node/reset").success


# ---------------------------------------------------------------- graph
def test_node_is_in_the_ros_graph_with_its_parameters(node: RunningNode) -> None:
    client = node.client
    assert ("seem_node", "/") in client.node.get_node_names_and_namespaces()
    names = client.call(ListParameters, "/seem_node/list_parameters").result.names
    assert {"classes", "score_threshold", "model_path", "autostart"} <= set(names)


def test_camera_info_is_subscribed_beside_the_remapped_image(node: RunningNode) -> None:
    client = node.client
    assert client.publishers["/camera/camera_info"].get_subscription_count() == 1
    assert client.node.count_subscribers("/camera_info") == 0
    assert client.publishers[f"{IMAGE_TOPIC}_mouse_left"].get_subscription_count() == 1


# ---------------------------------------------------------------- frames
ENCODING_BYTES = {
    "rgb8": 3,
    "bgr8": 3,
    "rgba8": 4,
    "bgra8": 4,
    "mono8": 1,
    "mono16": 2,
    "yuv422": 2,
    "yuv422_yuy2": 2,
}


@pytest.mark.parametrize("encoding", sorted(ENCODING_BYTES))
def test_frame_in_every_encoding_comes_back_with_its_header(
    node: RunningNode, encoding: str
) -> None:
    step = WIDTH * ENCODING_BYTES[encoding]

    def frame(stamp: int) -> bytes:
        data = np.random.default_rng(stamp).integers(0, 256, step * HEIGHT, dtype=np.uint8)
        return raw_image_cdr(encoding, WIDTH, HEIGHT, step, data.tobytes(), stamp_ns=stamp)

    outputs = node.client.frame(cdr=frame)
    for msg in outputs.values():
        assert msg.header.frame_id == FRAME_ID
    mask, overlay = outputs["seem/instance_mask"], outputs["seem/overlay"]
    assert (mask.encoding, mask.width, mask.height, mask.step) == (
        "mono16",
        WIDTH,
        HEIGHT,
        2 * WIDTH,
    )
    assert (overlay.encoding, overlay.width, overlay.height) == ("rgb8", WIDTH, HEIGHT)


# ---------------------------------------------------------------- prompt topics
def test_click_comes_back_as_a_detection_with_a_stable_track_id(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/point", point_stamped_cdr(40.0, 30.0, 1.0))
    first = client.frame_until(lambda found: len(found) == 1)["seem/detections"].detections
    second = client.frame()["seem/detections"].detections
    assert first[0].id.isdigit()
    assert [d.id for d in second] == [first[0].id]


def test_detector_boxes_come_back_with_the_detectors_classes(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/boxes", boxes_cdr(("mug", (5, 5, 50, 40)), ("person", (60, 20, 120, 90))))
    outputs = client.frame_until(lambda found: len(found) == 2)
    found = outputs["seem/detections"].detections
    assert sorted(label_of(d) for d in found) == ["mug", "person"]
    ids = np.frombuffer(outputs["seem/instance_mask"].data, dtype="<u2")
    assert set(np.unique(ids)) <= set(range(len(found) + 1))


def test_referring_phrase_comes_back_as_its_label(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/refer", string_cdr("the red star"))
    found = client.frame_until(lambda found: len(found) == 1)["seem/detections"].detections
    assert label_of(found[0]) == "the red star"


def test_mask_prompt_comes_back_as_an_object(node: RunningNode) -> None:
    client = node.client
    client.frame()
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[20:60, 30:90] = 255
    client.send("prompt/mask", mask_cdr(mask))
    client.frame_until(lambda found: len(found) == 1)


def test_rqt_click_beside_the_remapped_image_comes_back_as_an_object(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send(f"{IMAGE_TOPIC}_mouse_left", mouse_cdr(40.0, 30.0))
    client.frame_until(lambda found: len(found) == 1)


def test_rviz_click_waits_for_camera_info_then_is_projected_through_tf(node: RunningNode) -> None:
    """Without tf2_ros (the pip wheels) the node's own buffer reads /tf_static."""
    client = node.client
    client.frame()
    before = client.counter("click_before_camera_info")
    client.send("/clicked_point", point_stamped_cdr(0.1, 0.1, 0.0, "world"))
    assert client.wait_counter_above("click_before_camera_info", before) == before + 1
    client.send("/tf_static", tf_static_cdr(FRAME_ID, "world", 2.0))
    client.send("/camera/camera_info", camera_info_cdr())
    for _ in range(20):  # camera_info and /tf_static travel on their own topics
        client.send("/clicked_point", point_stamped_cdr(0.1, 0.1, 0.0, "world"))
        if len(client.frame()["seem/detections"].detections) == 1:
            break
    else:
        raise AssertionError(f"no clicked object; log:\n{node.log()}")
    assert client.counter("click_no_transform") == 0
    assert node.log_path.read_text().count("using seem_ros's own TF buffer") == 1


def test_class_names_are_published_as_latched_label_info(node: RunningNode) -> None:
    client = node.client
    client.send("prompt/classes", string_cdr("mug; person"))
    assert client.wait_for(lambda: client.labels() == ["mug", "person"]), client.labels()
    info = client.received["seem/label_info"][-1]
    assert [c.class_id for c in info.class_map] == [1, 2]
    assert math.isclose(info.threshold, 0.5)


def test_late_subscriber_gets_the_label_info(node: RunningNode, ros_domain: int) -> None:
    node.client.send("prompt/classes", string_cdr("door handle"))
    assert node.client.wait_for(lambda: node.client.labels() == ["door handle"])
    late = RosClient(ros_domain)
    try:
        assert late.wait_for(lambda: late.labels() == ["door handle"]), late.labels()
    finally:
        late.close()


ONE_SHOT_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import rclpy
    from std_msgs.msg import String
    rclpy.init()
    node = rclpy.create_node("one_shot")
    publisher = node.create_publisher(String, "/prompt/classes", 10)
    while publisher.get_subscription_count() < 1:
        time.sleep(0.01)
    publisher.publish(String(data=sys.argv[1]))
    time.sleep(0.1)
    """
)


def test_one_shot_prompt_sent_right_after_discovery_arrives(
    node: RunningNode, ros_domain: int
) -> None:
    """What ``ros2 topic pub --once /prompt/classes ...`` does: its own process waits for one
    matching subscription, publishes once (default QoS), lingers 0.1 s and exits."""
    for attempt in range(3):
        text = f"thing {attempt}; other {attempt}"
        subprocess.run(
            [sys.executable, "-c", ONE_SHOT_PUBLISHER, text],
            env=node_environment(ros_domain),
            check=True,
            timeout=60,
        )
        expected = [f"thing {attempt}", f"other {attempt}"]
        assert node.client.wait_for(lambda e=expected: node.client.labels() == e), attempt


# ---------------------------------------------------------------- services and parameters
def test_reset_service_clears_the_standing_objects(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/point", point_stamped_cdr(40.0, 30.0, 1.0))
    client.frame_until(lambda found: len(found) == 1)
    reply = client.call(Trigger, "/seem_node/reset")
    assert reply.success and "cleared" in reply.message
    assert len(client.frame()["seem/detections"].detections) == 0


def test_clear_clicks_service_removes_the_clicked_object(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/point", point_stamped_cdr(40.0, 30.0, 1.0))
    client.send("prompt/boxes", boxes_cdr(("mug", (60, 20, 120, 90))))
    client.frame_until(lambda found: len(found) == 2)
    assert client.call(Trigger, "/seem_node/clear_clicks").success
    assert [label_of(d) for d in client.frame()["seem/detections"].detections] == ["mug"]


def test_setting_classes_at_run_time_changes_the_label_info(node: RunningNode) -> None:
    client = node.client
    assert client.set_parameter("/seem_node", "classes", "cup; plate").successful
    assert client.wait_for(lambda: client.labels() == ["cup", "plate"]), client.labels()
    assert client.set_parameter("/seem_node", "classes", "").successful


def test_setting_the_score_threshold_at_run_time_is_published(node: RunningNode) -> None:
    client = node.client
    assert client.set_parameter("/seem_node", "score_threshold", 0.25).successful
    try:
        assert client.wait_for(
            lambda: math.isclose(client.received["seem/label_info"][-1].threshold, 0.25)
        )
    finally:
        assert client.set_parameter("/seem_node", "score_threshold", 0.5).successful


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("score_threshold", 3.0, "score_threshold"),
        ("max_instances", 0, "max_instances"),
        ("classes", " ; ", "class name"),
        ("backend", "onnxruntime", "read-only"),
        ("score_threshold", "high", "type"),
    ],
)
def test_bad_parameter_value_is_refused_with_a_reason(
    node: RunningNode, name: str, value: object, reason: str
) -> None:
    result = node.client.set_parameter("/seem_node", name, value)
    assert not result.successful
    assert reason in result.reason


def test_diagnostics_report_backend_rate_and_frame_counts(node: RunningNode) -> None:
    node.client.frame()
    assert node.client.wait_counter_above("frames_processed", 0) >= 1
    values = node.client.diagnostics_values()
    assert values["backend"] == "torch (fp32)"
    assert {"fps", "latency_ms_mean", "frames_dropped"} <= set(values)


# ---------------------------------------------------------------- bad input and load
BAD_INPUTS: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "unsupported encoding": (
        IMAGE_TOPIC,
        lambda: raw_image_cdr("bayer_rggb8", 4, 4, 4, bytes(16)),
        "unsupported_encoding",
    ),
    "encoding that does not fit the data": (
        IMAGE_TOPIC,
        lambda: raw_image_cdr("rgb8", 4, 4, 4, bytes(16)),
        "image_layout_mismatch",
    ),
    "step/size mismatch": (
        IMAGE_TOPIC,
        lambda: raw_image_cdr("mono8", 4, 4, 4, bytes(12)),
        "image_layout_mismatch",
    ),
    "empty image": (IMAGE_TOPIC, lambda: raw_image_cdr("rgb8", 0, 0, 0, b""), "empty_image"),
    "huge image": (IMAGE_TOPIC, lambda: image_cdr(7, height=200, width=300), "image_too_large"),
    "click outside the image": (
        "prompt/point",
        lambda: point_stamped_cdr(500.0, 10.0, 1.0),
        "click_outside_image",
    ),
    "NaN click": (
        "prompt/point",
        lambda: point_stamped_cdr(math.nan, 10.0, 1.0),
        "click_not_finite",
    ),
    "click label other than 0 or 1": (
        "prompt/point",
        lambda: point_stamped_cdr(10.0, 10.0, 0.5),
        "bad_click_label",
    ),
    "empty class string": ("prompt/classes", lambda: string_cdr(" ; "), "bad_classes"),
    "degenerate box": ("prompt/boxes", lambda: boxes_cdr(("mug", (5, 5, 5, 5))), "bad_box"),
    "mask of another size": (
        "prompt/mask",
        lambda: mask_cdr(np.ones((10, 10), dtype=np.uint8)),
        "bad_mask",
    ),
    "camera_info without focal length": (
        "/camera/camera_info",
        lambda: messages.serialize(
            messages.make_camera_info(messages.make_header(0, FRAME_ID), WIDTH, HEIGHT, [0.0] * 9)
        ),
        "bad_camera_info",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_logged_counted_and_the_node_keeps_serving(
    node: RunningNode, case: str
) -> None:
    topic, make_cdr, counter = BAD_INPUTS[case]
    client = node.client
    client.frame()
    before = client.counter(counter)
    client.send(topic, make_cdr())
    assert client.wait_counter_above(counter, before) == before + 1
    assert node.log_mentions(f"[{counter}]")
    assert len(client.frame()["seem/instance_mask"].data) == 2 * WIDTH * HEIGHT


def test_burst_of_frames_faster_than_the_model_drops_stale_frames(node: RunningNode) -> None:
    client = node.client
    client.send("prompt/point", point_stamped_cdr(40.0, 30.0, 1.0))
    dropped_before = client.counter("frames_dropped")
    stamps = [next(_stamps) for _ in range(40)]
    for cdr in [image_cdr(stamp) for stamp in stamps]:
        client.send(IMAGE_TOPIC, cdr)
    assert client.outputs_for(stamps[-1]), "the newest frame of the burst was not segmented"
    processed = {
        messages.ns_from_stamp(m.header.stamp) for m in client.received["seem/detections"]
    } & set(stamps)
    assert len(processed) < len(stamps)
    assert client.wait_counter_above("frames_dropped", dropped_before) > dropped_before


def test_flood_of_prompts_leaves_the_node_serving(node: RunningNode) -> None:
    client = node.client
    client.frame()
    dropped_before = client.counter("clicks_dropped")
    for index in range(200):
        client.send("prompt/point", point_stamped_cdr(float(index % WIDTH), 20.0, 1.0))
        client.send("prompt/classes", string_cdr(f"thing {index}"))
    for _ in range(2):  # the node keeps answering frames (which clicks a frame sees varies)
        assert len(client.frame()["seem/instance_mask"].data) == 2 * WIDTH * HEIGHT
    assert client.wait_counter_above("clicks_dropped", dropped_before) > dropped_before
    assert client.wait_for(lambda: client.labels() == ["thing 199"]), client.labels()


# ---------------------------------------------------------------- lifecycle
def get_state(client: RosClient) -> str:
    return client.call(GetState, "seem_node/get_state").current_state.label


def change_state(client: RosClient, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return client.call(ChangeState, "seem_node/change_state", request, idempotent=False).success


def compressed_frame(stamp: int) -> bytes:
    pixels = np.random.default_rng(stamp).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    ok, jpeg = cv2.imencode(".jpg", pixels)
    assert ok
    msg = messages.TYPESTORE.types[messages.COMPRESSED_IMAGE](
        header=messages.make_header(stamp, FRAME_ID), format="jpeg", data=jpeg.reshape(-1)
    )
    return messages.serialize(msg)


def test_lifecycle_transitions_without_autostart_in_a_namespace(
    ros_domain: int, tmp_path: Path
) -> None:
    """``seem_node`` as ``ros2 run`` starts it, ``autostart:=false``, in ``/robot``: the
    ``/**`` parameter file applies there (``use_compressed``), and every transition works."""
    config = write_config(tmp_path, **NODE_PARAMETERS, use_compressed=True)
    command = seem_node_command(
        config, save_tiny_model(tmp_path), "-p", "autostart:=false", "-r", "__ns:=/robot"
    )
    running = start_node(command, ros_domain, tmp_path, "/robot", [])
    client = running.client
    try:
        assert get_state(client) == "unconfigured", running.log()
        assert client.node.count_publishers("/robot/seem/detections") == 0
        assert change_state(client, Transition.TRANSITION_CONFIGURE)
        assert get_state(client) == "inactive"
        assert not client.wait_for(lambda: client.received["seem/label_info"], 1.0)
        assert change_state(client, Transition.TRANSITION_ACTIVATE)
        assert get_state(client) == "active"
        assert client.wait_for(lambda: client.received["seem/label_info"]), "no label info"
        assert client.wait_connected(running.process, ["image/compressed"]), running.log()
        found = client.frame("image/compressed", compressed_frame)
        assert found["seem/instance_mask"].width == WIDTH

        assert change_state(client, Transition.TRANSITION_DEACTIVATE)
        assert get_state(client) == "inactive"
        stamp = next(_stamps)
        client.send("image/compressed", compressed_frame(stamp))
        assert not client.outputs_for(stamp, timeout_s=2.0), "an inactive node segmented"

        assert change_state(client, Transition.TRANSITION_ACTIVATE)
        assert client.frame("image/compressed", compressed_frame)
        assert change_state(client, Transition.TRANSITION_DEACTIVATE)
        assert change_state(client, Transition.TRANSITION_CLEANUP)
        assert get_state(client) == "unconfigured"
        assert change_state(client, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert get_state(client) == "finalized"
    finally:
        assert stop_node(running) == 0, running.log()


# ---------------------------------------------------------------- refusing to start
def run_until_exit(command: list[str], domain_id: int) -> tuple[int, str]:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=node_environment(domain_id)
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("how", ["seem-ros node", "seem_node"])
@pytest.mark.parametrize("weights", ["missing", "corrupt"])
def test_node_with_unusable_weights_exits_non_zero_saying_why(
    tmp_path: Path, how: str, weights: str
) -> None:
    model = tmp_path / "model.safetensors"
    if weights == "corrupt":
        save_tiny_model(tmp_path)
        (tmp_path / "tiny.safetensors").rename(model)
        (tmp_path / "tiny.json").rename(tmp_path / "model.json")
        model.write_bytes(model.read_bytes()[:1000])
    config = write_config(tmp_path, **NODE_PARAMETERS)
    domain_id = random_domain()
    if how == "seem_node":
        command = seem_node_command(config, model)
    else:
        command = seem_ros_node_command(config, model, domain_id)
    status, output = run_until_exit(command, domain_id)
    assert status == 2, output
    assert ("not found" if weights == "missing" else "corrupt") in output


@pytest.mark.parametrize("how", ["seem-ros node", "seem_node"])
def test_node_with_an_invalid_parameter_exits_non_zero_naming_it(tmp_path: Path, how: str) -> None:
    config = write_config(tmp_path, **{**NODE_PARAMETERS, "score_threshold": 3.0})
    model = tmp_path / "unused.safetensors"
    domain_id = random_domain()
    if how == "seem_node":
        command = seem_node_command(config, model)
    else:
        command = seem_ros_node_command(config, model, domain_id)
    status, output = run_until_exit(command, domain_id)
    assert status == 2, output
    assert "score_threshold" in output
    assert "Traceback" not in output


# ---------------------------------------------------------------- names
def test_camera_info_topic_sits_beside_the_image_topic() -> None:
    assert beside_image("/camera/image_raw", "camera_info") == "/camera/camera_info"
    assert beside_image("/image", "camera_info") == "/camera_info"


def test_malformed_remap_is_rejected() -> None:
    with pytest.raises(ValueError, match="from:=to"):
        parse_remaps(["image=/camera/image_raw"])


def test_missing_interface_package_names_the_setup_step() -> None:
    with pytest.raises(NodeStartError, match=r"tools/setup_ros\.py"):
        ros_interface("no_such_msgs/msg/Thing")


def test_without_ros_2_the_node_command_says_how_to_install_it(tmp_path: Path) -> None:
    """As on a machine without ROS 2: ``import rclpy`` fails."""
    shadow = tmp_path / "no_ros" / "rclpy"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named rclpy')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "seem_ros.cli", "node"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "tools/setup_ros.py" in result.stderr
    assert "Traceback" not in result.stderr
