"""The SEEM node end to end, over real DDS traffic on the loopback interface.

The node runs in its own process, once per adapter installed here (``dds``: ``seem-ros node``;
``rclpy``: the ``seem_node`` lifecycle node, skipped where ROS 2 is not installed), on its own
random ROS domain with localhost-only discovery. This test process is a plain Cyclone DDS
participant: it publishes frames and prompts and asserts on the detections, instance masks,
overlays and diagnostics that come back. The model is the random-init ``tiny`` network saved
to a real safetensors file, so assertions are about structure, never mask quality.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import itertools
import logging
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from ros_payloads import (
    FRAME_ID,
    HEIGHT,
    WIDTH,
    image_cdr,
    raw_image_cdr,
    small_tiny_model,
    string_cdr,
)

from seem_ros.model.build import save_model
from seem_ros.ros import messages
from seem_ros.ros.dds import DdsContext, RawPublisher, RawServiceClient, RawSubscriber
from seem_ros.ros.dds_node import parse_remaps, resolve_topics

ADAPTERS = ("dds", "rclpy")
START_TIMEOUT_S = 90.0
REPLY_TIMEOUT_S = 30.0
TRIGGER = "std_srvs/srv/Trigger"
INPUT_TOPICS = {
    "image": messages.IMAGE,
    "prompt/point": messages.POINT_STAMPED,
    "prompt/boxes": messages.DETECTION_2D_ARRAY,
    "prompt/classes": messages.STRING,
    "/clicked_point": messages.POINT_STAMPED,
}
OUTPUT_TOPICS = {
    "seem/detections": messages.DETECTION_2D_ARRAY,
    "seem/instance_mask": messages.IMAGE,
    "seem/overlay": messages.IMAGE,
    "diagnostics": messages.DIAGNOSTIC_ARRAY,
}
NODE_PARAMETERS = {
    "backend": "torch",
    "device": "cpu",
    "diagnostics_period": 0.2,
    "max_image_pixels": 200 * 200,
    "max_clicks": 8,
}
_stamps = itertools.count(1_000_000_000, 1_000)


def adapter_available(adapter: str) -> bool:
    return adapter == "dds" or importlib.util.find_spec("rclpy") is not None


def skip_unless_installed(adapter: str) -> None:
    if not adapter_available(adapter):
        pytest.skip("rclpy is not installed (no ROS 2 here); the DDS adapter covers the node")


def node_command(adapter: str, config: Path, model: Path, domain_id: int) -> list[str]:
    if adapter == "dds":
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
        ]
    return [
        sys.executable,
        "-m",
        "seem_ros.ros.rclpy_node",
        "--ros-args",
        "--params-file",
        str(config),
        "-p",
        f"model_path:={model}",
    ]


def node_environment(domain_id: int) -> dict[str, str]:
    return {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_LOCALHOST_ONLY": "1",
        "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp",
        "OMP_NUM_THREADS": "1",
    }


def save_tiny_model(folder: Path) -> Path:
    """The random-init ``tiny`` network at 64 px input (cheap on a shared CPU)."""
    model, card = small_tiny_model()
    return save_model(model, folder / "tiny.safetensors", card)


def write_config(folder: Path, **parameters: object) -> Path:
    path = folder / "seem.yaml"
    path.write_text(yaml.safe_dump({"seem_node": {"ros__parameters": parameters}}))
    return path


# ---------------------------------------------------------------- messages
def point_cdr(x: float, y: float, z: float, frame_id: str = "") -> bytes:
    header = messages.make_header(0, frame_id)
    point = messages.TYPESTORE.types[messages.POINT](x=x, y=y, z=z)
    return messages.serialize(
        messages.TYPESTORE.types[messages.POINT_STAMPED](header=header, point=point)
    )


def boxes_cdr(*boxes: tuple[str, tuple[float, float, float, float]]) -> bytes:
    header = messages.make_header(0, FRAME_ID)
    return messages.serialize(
        messages.make_detection_array(header, [(label, 0.9, box, None) for label, box in boxes])
    )


def label_of(detection: Any) -> str:
    return detection.results[0].hypothesis.class_id


# ---------------------------------------------------------------- the test process's side
class NodeClient:
    """A plain DDS participant that talks to the node under test."""

    def __init__(self, domain_id: int) -> None:
        self.context = DdsContext(domain_id, localhost_only=True)
        self._condition = threading.Condition()
        self.received: dict[str, list[Any]] = {topic: [] for topic in OUTPUT_TOPICS}
        self.publishers = {
            topic: RawPublisher(self.context, topic, ros_type)
            for topic, ros_type in INPUT_TOPICS.items()
        }
        self.subscribers = [
            RawSubscriber(self.context, topic, ros_type, self._receiver(topic, ros_type))
            for topic, ros_type in OUTPUT_TOPICS.items()
        ]
        self.services = {
            name: RawServiceClient(self.context, f"/seem_node/{name}", TRIGGER)
            for name in ("reset", "clear_clicks")
        }

    def _receiver(self, topic: str, ros_type: str) -> Callable[[bytes, int], None]:
        def receive(cdr: bytes, source_timestamp_ns: int) -> None:
            msg = messages.deserialize(cdr, ros_type)
            with self._condition:
                self.received[topic].append(msg)
                del self.received[topic][:-200]
                self._condition.notify_all()

        return receive

    def wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        endpoints = [
            *(lambda p=p: p.wait_for_subscriptions(1, 0.5) for p in self.publishers.values()),
            *(lambda s=s: s.wait_for_publications(1, 0.5) for s in self.subscribers),
            *(lambda c=c: c.wait_for_service(0.5) for c in self.services.values()),
        ]
        for ready in endpoints:
            while not ready():
                if process.poll() is not None or time.monotonic() > deadline:
                    return False
        return True

    def send(self, topic: str, cdr: bytes) -> None:
        self.publishers[topic].publish(cdr)

    def wait_for(self, condition: Callable[[], Any], timeout_s: float = REPLY_TIMEOUT_S) -> Any:
        with self._condition:
            return self._condition.wait_for(condition, timeout=timeout_s)

    def outputs_for(self, stamp_ns: int) -> dict[str, Any]:
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

        found = self.wait_for(matching)
        assert found, f"no outputs for the frame stamped {stamp_ns} within {REPLY_TIMEOUT_S} s"
        return found

    def frame(self, **image_size: int) -> dict[str, Any]:
        """Publish one frame and return its detections, instance mask and overlay."""
        stamp = next(_stamps)
        self.send("image", image_cdr(stamp, **image_size))
        return self.outputs_for(stamp)

    def frame_until(self, done: Callable[[list[Any]], bool], attempts: int = 20) -> dict[str, Any]:
        """Publish frames until one's detections satisfy ``done`` (prompts sent just before
        travel on other topics, so DDS may deliver them after the next frame)."""
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

    def call(self, service: str) -> Any:
        request = messages.TYPESTORE.types[f"{TRIGGER}_Request"](
            structure_needs_at_least_one_member=0
        )
        reply = self.services[service].call(messages.serialize(request), timeout_s=REPLY_TIMEOUT_S)
        return messages.deserialize(reply, f"{TRIGGER}_Response")

    def close(self) -> None:
        self.context.close()


@dataclasses.dataclass
class RunningNode:
    process: subprocess.Popen[bytes]
    client: NodeClient
    log_path: Path

    def log_mentions(self, text: str, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return False


@pytest.fixture(scope="module", params=ADAPTERS)
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    adapter = request.param
    skip_unless_installed(adapter)
    folder = tmp_path_factory.mktemp(f"node_{adapter}")
    model = save_tiny_model(folder)
    config = write_config(folder, **NODE_PARAMETERS)
    domain_id = random.randint(100, 230)
    log_path = folder / "node.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            node_command(adapter, config, model, domain_id),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=node_environment(domain_id),
        )
    client = NodeClient(domain_id)
    try:
        if not client.wait_ready(process, START_TIMEOUT_S):
            pytest.fail(f"the {adapter} node did not come up:\n{log_path.read_text()[-3000:]}")
        yield RunningNode(process, client, log_path)
    finally:
        client.close()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def fresh_prompts(request: pytest.FixtureRequest) -> None:
    """Each test starts without standing prompts (the node process is shared)."""
    if "node" in request.fixturenames:
        assert request.getfixturevalue("node").client.call("reset").success


# ---------------------------------------------------------------- results
def test_frame_comes_back_as_detections_mask_and_overlay_with_its_header(node: RunningNode) -> None:
    stamp = next(_stamps)
    node.client.send("image", image_cdr(stamp))
    outputs = node.client.outputs_for(stamp)
    for msg in outputs.values():
        assert messages.ns_from_stamp(msg.header.stamp) == stamp
        assert msg.header.frame_id == FRAME_ID
    mask, overlay = outputs["seem/instance_mask"], outputs["seem/overlay"]
    assert (mask.encoding, mask.width, mask.height, mask.step) == (
        "mono16",
        WIDTH,
        HEIGHT,
        2 * WIDTH,
    )
    assert (overlay.encoding, overlay.width, overlay.height) == ("rgb8", WIDTH, HEIGHT)


def test_click_comes_back_as_a_detection_with_a_stable_track_id(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/point", point_cdr(40.0, 30.0, 1.0))
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


def test_reset_service_clears_the_standing_objects(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/point", point_cdr(40.0, 30.0, 1.0))
    client.frame_until(lambda found: len(found) == 1)
    assert client.call("reset").success
    assert len(client.frame()["seem/detections"].detections) == 0


def test_clear_clicks_service_removes_the_clicked_object(node: RunningNode) -> None:
    client = node.client
    client.frame()
    client.send("prompt/point", point_cdr(40.0, 30.0, 1.0))
    client.send("prompt/boxes", boxes_cdr(("mug", (60, 20, 120, 90))))
    client.frame_until(lambda found: len(found) == 2)
    assert client.call("clear_clicks").success
    assert [label_of(d) for d in client.frame()["seem/detections"].detections] == ["mug"]


def test_diagnostics_report_backend_rate_and_frame_counts(node: RunningNode) -> None:
    node.client.frame()
    assert node.client.wait_counter_above("frames_processed", 0) >= 1
    values = node.client.diagnostics_values()
    assert values["backend"] == "torch (fp32)"
    assert {"fps", "latency_ms_mean", "frames_dropped"} <= set(values)


# ---------------------------------------------------------------- bad input and load
BAD_INPUTS: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "unsupported encoding": (
        "image",
        lambda: raw_image_cdr("bayer_rggb8", 4, 4, 4, bytes(16)),
        "unsupported_encoding",
    ),
    "encoding that does not fit the data": (
        "image",
        lambda: raw_image_cdr("rgb8", 4, 4, 4, bytes(16)),
        "image_layout_mismatch",
    ),
    "step/size mismatch": (
        "image",
        lambda: raw_image_cdr("mono8", 4, 4, 4, bytes(12)),
        "image_layout_mismatch",
    ),
    "empty image": ("image", lambda: raw_image_cdr("rgb8", 0, 0, 0, b""), "empty_image"),
    "huge image": ("image", lambda: image_cdr(7, height=200, width=300), "image_too_large"),
    "click outside the image": (
        "prompt/point",
        lambda: point_cdr(500.0, 10.0, 1.0),
        "click_outside_image",
    ),
    "NaN click": ("prompt/point", lambda: point_cdr(math.nan, 10.0, 1.0), "click_not_finite"),
    "clicked point before camera_info": (
        "/clicked_point",
        lambda: point_cdr(0.0, 0.0, 1.0, FRAME_ID),
        "click_before_camera_info",
    ),
    "empty class string": ("prompt/classes", lambda: string_cdr(" ; "), "bad_classes"),
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
    client.send("prompt/point", point_cdr(40.0, 30.0, 1.0))
    dropped_before = client.counter("frames_dropped")
    stamps = [next(_stamps) for _ in range(40)]
    frames = [image_cdr(stamp) for stamp in stamps]
    for cdr in frames:
        client.send("image", cdr)
    client.outputs_for(stamps[-1])
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
        client.send("prompt/point", point_cdr(float(index % WIDTH), 20.0, 1.0))
        client.send("prompt/classes", string_cdr(f"thing {index}"))
    client.frame_until(lambda found: len(found) >= 1)
    assert client.wait_counter_above("clicks_dropped", dropped_before) > dropped_before


def run_node_until_exit(adapter: str, config: Path, model: Path) -> tuple[int, str]:
    """Start a node that should refuse to start; its exit status and output.

    The DDS node's command runs in this process (``seem_ros.cli.main``, what the
    ``seem-ros`` script calls) to spare a second torch import on a shared CPU.
    """
    domain_id = random.randint(100, 230)
    if adapter == "dds":
        from seem_ros.cli import main

        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        logging.getLogger().addHandler(handler)
        try:
            status = main(node_command(adapter, config, model, domain_id)[3:])
        finally:
            logging.getLogger().removeHandler(handler)
        return status, stream.getvalue()
    result = subprocess.run(
        node_command(adapter, config, model, domain_id),
        capture_output=True,
        text=True,
        timeout=120,
        env=node_environment(domain_id),
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("weights", ["missing", "corrupt"])
def test_node_with_unusable_weights_exits_non_zero_saying_why(
    tmp_path: Path, adapter: str, weights: str
) -> None:
    skip_unless_installed(adapter)
    model = tmp_path / "model.safetensors"
    if weights == "corrupt":
        save_tiny_model(tmp_path)
        (tmp_path / "tiny.safetensors").rename(model)
        (tmp_path / "tiny.json").rename(tmp_path / "model.json")
        model.write_bytes(model.read_bytes()[:1000])
    status, output = run_node_until_exit(adapter, write_config(tmp_path, **NODE_PARAMETERS), model)
    assert status != 0
    assert ("not found" if weights == "missing" else "corrupt") in output


def test_node_with_an_invalid_parameter_exits_non_zero_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, **{**NODE_PARAMETERS, "score_threshold": 3.0})
    status, output = run_node_until_exit("dds", config, tmp_path / "unused.safetensors")
    assert status != 0
    assert "score_threshold" in output


# ---------------------------------------------------------------- DDS adapter names
def test_remapped_image_takes_its_compressed_and_mouse_topics_along() -> None:
    names = resolve_topics(parse_remaps(["image:=/camera/image_raw"]))
    assert names["image"] == "/camera/image_raw"
    assert names["image/compressed"] == "/camera/image_raw/compressed"
    assert names["image_mouse_left"] == "/camera/image_raw_mouse_left"


def test_names_resolve_in_the_namespace_and_services_under_the_node() -> None:
    names = resolve_topics({}, namespace="/robot", node_name="seem")
    assert names["detections"] == "/robot/seem/detections"
    assert names["clicked_point"] == "/clicked_point"
    assert names["reset"] == "/robot/seem/reset"


def test_explicit_remap_of_a_derived_topic_wins() -> None:
    names = resolve_topics({"image": "/cam/image", "image/compressed": "/cam/jpeg"})
    assert names["image/compressed"] == "/cam/jpeg"


def test_malformed_remap_is_rejected() -> None:
    with pytest.raises(ValueError, match="from:=to"):
        parse_remaps(["image=/camera/image_raw"])
