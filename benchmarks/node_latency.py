"""Node end-to-end latency over DDS against the bare pipeline: same model, frames and prompts.

The node (``seem-ros node``, the rclpy lifecycle node; ROS 2 from ``tools/setup_ros.py`` or a
sourced ROS 2) runs in a child process on a private localhost-only domain. This process is its
rclpy client: it publishes one rgb8
``sensor_msgs/Image`` at a time on ``image`` and waits until every output of that frame
(matched by header stamp) has come back before sending the next, so the node never queues
and the latency is the node's own: publish -> ``seem/detections`` received, and publish ->
last output (instance mask, overlay) received. Interleaved with it, frame by frame, this
process times the bare pipeline on the same frame: ``Segmenter.segment`` (encode, decode,
post-process) with the same class names, on the same backend, threads and weights.

Both sides segment untracked (``tracking: false``): the bare pipeline has no tracker, so
this measures what the node adds (CDR, DDS, image conversion, the mask and overlay outputs).

Usage: python benchmarks/node_latency.py [--frames 30] [--warmup 5] [--size 480x640]
           [--model PATH] [--classes "circle; diamond"] [--threads 1] [--no-overlay]
           [--json results.json]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from _common import (  # also puts seem_ros on sys.path
    REPO_ROOT,
    host_info,
    sample_clip,
    save_results,
)
from _common import parse_size as parse_any_size

from seem_ros.model.build import build_model, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.prompts import ClassNames
from seem_ros.ros import messages
from seem_ros.ros.image_codec import rgb_to_image_msg
from seem_ros.ros.node import ros_interface
from seem_ros.ros.params import NodeParams
from seem_ros.ros.pipeline import load_segmenter_for

START_TIMEOUT_S = 120.0
REPLY_TIMEOUT_S = 60.0
DISTINCT_FRAMES = 8
TARGET_RATIO = 1.10
STAMP_START_NS = 1_000_000_000


def parse_size(text: str) -> tuple[int, int]:
    size = parse_any_size(text)
    if min(size) < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return size


def random_tiny_model(folder: Path) -> Path:
    """The random-init ``tiny`` network (no trained model exists yet) in a safetensors file."""
    config = load_config("tiny")
    return save_model(build_model(config, seed=0), folder / "tiny.safetensors", ModelCard(config))


def clip_frames(size: tuple[int, int]) -> list[np.ndarray]:
    return [scene.image for scene in sample_clip(DISTINCT_FRAMES, size)]


@dataclass
class Outputs:
    """Receive times (perf_counter) of each output topic, by frame stamp."""

    expected: tuple[str, ...]
    times: dict[int, dict[str, float]] = field(default_factory=dict)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def receiver(self, topic: str, ros_type: str) -> Any:
        def receive(cdr: bytes) -> None:
            arrived = time.perf_counter()
            stamp = messages.ns_from_stamp(messages.deserialize(cdr, ros_type).header.stamp)
            with self.condition:
                self.times.setdefault(stamp, {})[topic] = arrived
                self.condition.notify_all()

        return receive

    def wait(self, stamp: int) -> dict[str, float]:
        with self.condition:
            done = self.condition.wait_for(
                lambda: set(self.expected) <= set(self.times.get(stamp, {})), REPLY_TIMEOUT_S
            )
            if not done:
                raise TimeoutError(f"no complete outputs for frame {stamp} in {REPLY_TIMEOUT_S} s")
            return self.times.pop(stamp)


def start_node(
    folder: Path, params: dict[str, object], model: Path, domain_id: int, threads: int
) -> subprocess.Popen[bytes]:
    config = folder / "seem.yaml"
    config.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    command = [
        sys.executable, "-m", "seem_ros.cli", "node", "--config", str(config),
        "--model", str(model), "--domain-id", str(domain_id), "--localhost-only",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO_ROOT)}
    log = (folder / "node.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


class RosClient:
    """An rclpy participant on ``domain_id`` (localhost discovery), spinning on a thread."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("node_latency_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context shuts down under us at close
            return

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


def stop_node(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def summarise(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "mean_ms": statistics.fmean(ordered),
        "min_ms": ordered[0],
    }


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    model = args.model or random_tiny_model(folder)
    node_params = {
        "backend": "torch",
        "device": "cpu",
        "tracking": False,
        "classes": args.classes,
        "publish_overlay": not args.no_overlay,
        "qos_reliability": "reliable",
    }
    segmenter = load_segmenter_for(NodeParams(model_path=str(model), **node_params))
    classes = ClassNames.parse(args.classes)
    frames = clip_frames(args.size)
    expected = ("seem/detections", "seem/instance_mask") + (
        () if args.no_overlay else ("seem/overlay",)
    )
    outputs = Outputs(expected)
    domain_id = random.randint(100, 230)
    process = start_node(folder, node_params, model, domain_id, args.threads)
    client: RosClient | None = None
    bare: list[float] = []
    to_detections: list[float] = []
    to_all: list[float] = []
    try:
        client = RosClient(domain_id)
        publisher = client.node.create_publisher(
            ros_interface(messages.IMAGE), "image", client.reliable
        )
        for topic, ros_type in (
            ("seem/detections", messages.DETECTION_2D_ARRAY),
            ("seem/instance_mask", messages.IMAGE),
            ("seem/overlay", messages.IMAGE),
        ):
            client.node.create_subscription(
                ros_interface(ros_type),
                topic,
                outputs.receiver(topic, ros_type),
                client.reliable,
                raw=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (
            publisher.get_subscription_count() > 0
            and client.node.count_publishers("seem/detections") > 0
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "node.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the node did not come up:\n{log}")
            time.sleep(0.1)
        for index in range(args.warmup + args.frames):
            rgb = frames[index % len(frames)]
            started = time.perf_counter()
            segmenter.segment(rgb, classes)
            bare_ms = 1000 * (time.perf_counter() - started)
            stamp = STAMP_START_NS + index
            header = messages.make_header(stamp, "camera")
            cdr = messages.serialize(rgb_to_image_msg(rgb, header))
            published = time.perf_counter()
            publisher.publish(cdr)
            arrived = outputs.wait(stamp)
            if index < args.warmup:
                continue
            bare.append(bare_ms)
            to_detections.append(1000 * (arrived["seem/detections"] - published))
            to_all.append(1000 * (max(arrived.values()) - published))
    finally:
        if client is not None:
            client.close()
        stop_node(process)
    return {
        "bare": summarise(bare),
        "node_detections": summarise(to_detections),
        "node_all_outputs": summarise(to_all),
        "model": str(args.model) if args.model else "random-init tiny (untrained)",
        "model_input_px": segmenter.image_size,
        "backend": segmenter.engine.describe(),
        "frame_size": list(args.size),
        "frames": args.frames,
        "warmup": args.warmup,
        "classes": args.classes,
        "overlay": not args.no_overlay,
        **host_info(args.threads),
    }


def table(results: dict[str, Any]) -> str:
    bare = results["bare"]
    lines = [
        f"{'path':<34} {'median':>8} {'p90':>8} {'mean':>8}  {'ratio (median, p90)':>20}",
    ]
    rows = [
        ("bare pipeline (Segmenter.segment)", bare),
        ("node: publish -> detections", results["node_detections"]),
        ("node: publish -> all outputs", results["node_all_outputs"]),
    ]
    for name, stats in rows:
        median_ratio = stats["median_ms"] / bare["median_ms"]
        ratio = f"{median_ratio:.2f}x, {stats['p90_ms'] / bare['p90_ms']:.2f}x"
        lines.append(
            f"{name:<34} {stats['median_ms']:>8.1f} {stats['p90_ms']:>8.1f} "
            f"{stats['mean_ms']:>8.1f}  {ratio:>20}"
        )
    lines.append(f"(ms; target: node <= {TARGET_RATIO:.2f}x bare)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="timed frames (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames first")
    parser.add_argument("--size", type=parse_size, default=(480, 640), help="HEIGHTxWIDTH")
    parser.add_argument("--model", type=Path, help="weights (default: random-init tiny)")
    parser.add_argument("--classes", default="circle; diamond; hexagon", help="classes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--no-overlay", action="store_true", help="node without seem/overlay")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.frames < 1 or args.warmup < 0:
        parser.error("--frames must be >= 1 and --warmup >= 0")
    with tempfile.TemporaryDirectory() as folder:
        results = measure(args, Path(folder))
    print(table(results))
    print(
        f"{results['frames']} frames {args.size[1]}x{args.size[0]} rgb8, model "
        f"{results['model']} at {results['model_input_px']} px, {results['backend']}, "
        f"{args.threads} thread(s); load average {results['load_average'][0]:.2f} "
        f"on {results['cpus']} CPUs"
    )
    save_results(args.json, results)


if __name__ == "__main__":
    main()
