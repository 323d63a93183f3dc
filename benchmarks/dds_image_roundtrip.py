"""Time a 640x480 rgb8 sensor_msgs/Image through the raw Cyclone DDS adapter.

Two measurements, both on a localhost-only domain:

* in-process: ``RawPublisher.publish`` + ``RawSubscriber.take`` between two
  participants of this process (Cyclone's in-process delivery path);
* loopback: round trip to an echo peer in a child process, which republishes
  every image; the bytes cross the loopback interface twice.

Usage: python benchmarks/dds_image_roundtrip.py [--frames N] [--domain ID]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from seem_ros.ros.dds import DdsContext, RawPublisher, RawSubscriber  # noqa: E402
from seem_ros.ros.messages import TYPESTORE  # noqa: E402

IMAGE = "sensor_msgs/msg/Image"
TIMEOUT_S = 10.0


def rgb8_image_cdr(height: int = 480, width: int = 640) -> bytes:
    time_type = TYPESTORE.types["builtin_interfaces/msg/Time"]
    header = TYPESTORE.types["std_msgs/msg/Header"](
        stamp=time_type(sec=0, nanosec=0), frame_id="cam"
    )
    pixels = np.random.default_rng(0).integers(0, 256, height * width * 3, dtype=np.uint8)
    image = TYPESTORE.types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=pixels,
    )
    return bytes(TYPESTORE.serialize_cdr(image, IMAGE))


def run_echo_peer(domain_id: int, frames: int) -> None:
    """Child process: republish every image from ``bench/image`` on ``bench/echo``."""
    with DdsContext(domain_id, localhost_only=True) as context:
        echo = RawPublisher(context, "bench/echo", IMAGE)
        done = threading.Event()
        count = 0

        def republish(cdr: bytes, _stamp: int) -> None:
            nonlocal count
            echo.publish(cdr)
            count += 1
            if count == frames:
                done.set()

        incoming = RawSubscriber(context, "bench/image", IMAGE, callback=republish)
        if echo.wait_for_subscriptions(1, TIMEOUT_S) and incoming.wait_for_publications(
            1, TIMEOUT_S
        ):
            print("ready", flush=True)
            done.wait(TIMEOUT_S * frames)


def time_in_process(domain_id: int, cdr: bytes, frames: int) -> list[float]:
    with (
        DdsContext(domain_id, localhost_only=True) as sender,
        DdsContext(domain_id, localhost_only=True) as receiver,
    ):
        subscriber = RawSubscriber(receiver, "bench/local", IMAGE)
        publisher = RawPublisher(sender, "bench/local", IMAGE)
        if not publisher.wait_for_subscriptions(1, TIMEOUT_S):
            raise RuntimeError("in-process subscriber never matched")
        seconds = []
        for _ in range(frames):
            start = time.perf_counter()
            publisher.publish(cdr)
            samples = subscriber.take(1)
            seconds.append(time.perf_counter() - start)
            if len(samples) != 1 or samples[0].cdr != cdr:
                raise RuntimeError("in-process image lost or corrupted")
        return seconds


def time_loopback_round_trip(domain_id: int, cdr: bytes, frames: int) -> list[float]:
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--echo-peer",
            "--domain",
            str(domain_id),
            "--frames",
            str(frames),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with DdsContext(domain_id, localhost_only=True) as context:
            arrived = threading.Event()
            echoed: list[bytes] = []

            def on_echo(payload: bytes, _stamp: int) -> None:
                echoed.append(payload)
                arrived.set()

            returned = RawSubscriber(context, "bench/echo", IMAGE, callback=on_echo)
            outgoing = RawPublisher(context, "bench/image", IMAGE)
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("echo peer failed to start")
            if not (
                outgoing.wait_for_subscriptions(1, TIMEOUT_S)
                and returned.wait_for_publications(1, TIMEOUT_S)
            ):
                raise RuntimeError("echo peer never matched")
            seconds = []
            for _ in range(frames):
                arrived.clear()
                start = time.perf_counter()
                outgoing.publish(cdr)
                if not arrived.wait(TIMEOUT_S):
                    raise RuntimeError("echoed image never arrived")
                seconds.append(time.perf_counter() - start)
                if echoed[-1] != cdr:
                    raise RuntimeError("echoed image corrupted")
            return seconds
    finally:
        child.wait(TIMEOUT_S)


def row(name: str, seconds: list[float]) -> str:
    ms = [1e3 * s for s in seconds]
    return (
        f"{name:<38} {statistics.median(ms):8.2f} {min(ms):8.2f} "
        f"{np.percentile(ms, 95):8.2f} {len(ms):6d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--domain", type=int, default=187)
    parser.add_argument("--echo-peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_peer:
        run_echo_peer(args.domain, args.frames)
        return
    cdr = rgb8_image_cdr()
    print(f"640x480 rgb8 sensor_msgs/Image, {len(cdr)} bytes of CDR")
    print(f"{'path':<38} {'median':>8} {'min':>8} {'p95':>8} {'frames':>6}   (ms)")
    print(row("publish + take, in-process", time_in_process(args.domain, cdr, args.frames)))
    round_trips = time_loopback_round_trip(args.domain, cdr, args.frames)
    print(row("publish + receive, loopback (RTT/2)", [s / 2 for s in round_trips]))
    print(row("round trip via echo process", round_trips))


if __name__ == "__main__":
    main()
