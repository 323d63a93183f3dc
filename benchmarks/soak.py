"""Soak: thousands of frames through the node core with tracking on; is memory flat?

The middleware-free :class:`~seem_ros.ros.node_core.NodeCore` (``threaded=False``: every frame
segmented, none dropped) takes a procedural clip played back and forth (continuous motion,
objects leaving and re-entering), standing class names and a click on one object every
``--click-every`` frames (each re-seeds the clicked object under a new track ID, SEEM's
interactive refinement), with tracking on. Process RSS (psutil) is sampled at the start,
after a warm-up, at every tenth of the run and at the end, together with the standing tracks
and the track IDs seen so far.

Memory counts as flat when RSS at the end exceeds RSS after the warm-up by less than
``--tolerance-mib`` (default 16 MiB): caches fill during the warm-up, a leak keeps growing.

Usage: python benchmarks/soak.py [--frames 2000] [--size 96x128] [--input-size 64]
           [--click-every 100] [--threads 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from _common import (  # also puts seem_ros on sys.path
    host_info,
    parse_size,
    sample_clip,
    save_results,
)
from tqdm import tqdm

from seem_ros.data.clips import Clip
from seem_ros.model.build import build_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.ros import messages
from seem_ros.ros.image_codec import rgb_to_image_msg
from seem_ros.ros.node_core import NodeCore
from seem_ros.ros.params import NodeParams
from seem_ros.segmenter import Segmenter

CLIP_FRAMES = 40
PERIOD_NS = 33_000_000
WARMUP_SHARE = 0.1
CHECKPOINTS = 10
MIB = 1024 * 1024


def ping_pong(count: int, length: int) -> int:
    """Frame ``count`` of a clip of ``length`` frames played forwards, backwards, forwards..."""
    period = 2 * (length - 1)
    phase = count % period
    return phase if phase < length else period - phase


def click_cdr(clip: Clip, frame: int) -> bytes | None:
    """A positive click on the occluder at a pixel of its mask; None where it is not visible."""
    rows, cols = np.nonzero(clip[frame].segment_ids == clip.occluder_id)
    if rows.size == 0:
        return None
    nearest = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    header = messages.make_header(0, "camera")
    x, y = float(cols[nearest]) + 0.5, float(rows[nearest]) + 0.5
    return messages.serialize(messages.make_point_stamped(header, x, y, 1.0))


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def soak(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    config = dataclasses.replace(load_config("tiny"), image_size=args.input_size)
    segmenter = Segmenter(build_model(config, seed=0), ModelCard(config=config, trained=False))
    params = NodeParams(backend="torch", device="cpu", tracking=True, score_threshold=0.0)
    core = NodeCore(segmenter, params, lambda *_: None, threaded=False)
    clip = sample_clip(CLIP_FRAMES, args.size)
    classes = "; ".join(sorted({track.category for track in clip.tracks.values()}))
    images = [
        messages.serialize(rgb_to_image_msg(scene.image, messages.make_header(0, "camera")))
        for scene in clip
    ]
    warmup_end = max(1, int(args.frames * WARMUP_SHARE))
    checkpoints = {warmup_end, args.frames} | {
        round(args.frames * k / CHECKPOINTS) for k in range(1, CHECKPOINTS)
    }
    samples = [{"frame": 0, "rss_mib": rss_mib(), "tracks": 0, "track_ids_seen": 0}]
    track_ids: set[str] = set()
    detections = 0
    core.feed("prompt/classes", messages.serialize(messages.make_string(classes)))
    started = time.perf_counter()
    for count in tqdm(range(args.frames), unit="frame", desc="soak", mininterval=5.0):
        header = messages.make_header(1_000_000_000 + count * PERIOD_NS, "camera")
        frame = ping_pong(count, len(images))
        image = messages.deserialize(images[frame], messages.IMAGE)
        cdr = messages.serialize(dataclasses.replace(image, header=header))
        for output in core.feed("image", cdr):
            if output.key == "detections":
                found = messages.deserialize(output.cdr, output.ros_type).detections
                detections += len(found)
                track_ids.update(d.id for d in found if d.id)
        click = click_cdr(clip, frame) if count % args.click_every == 0 else None
        if click is not None:
            core.feed("prompt/point", click)
        if count + 1 in checkpoints:
            samples.append(
                {
                    "frame": count + 1,
                    "rss_mib": rss_mib(),
                    "tracks": core.session.object_count,
                    "track_ids_seen": len(track_ids),
                }
            )
    seconds = time.perf_counter() - started
    core.close()
    after_warmup = next(s for s in samples if s["frame"] == warmup_end)["rss_mib"]
    growth = samples[-1]["rss_mib"] - after_warmup
    counters = core.counters.snapshot()
    return {
        "frames": args.frames,
        "frames_processed": counters.get("frames_processed", 0),
        "processing_errors": counters.get("processing_errors", 0),
        "frame_size": list(args.size),
        "model_input_px": args.input_size,
        "model": "random-init tiny (untrained)",
        "classes": classes,
        "click_every": args.click_every,
        "clicks_dropped": counters.get("clicks_dropped", 0),
        "ms_per_frame": 1000 * seconds / args.frames,
        "detections": detections,
        "samples": samples,
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_after_warmup_mib": after_warmup,
        "rss_end_mib": samples[-1]["rss_mib"],
        "growth_after_warmup_mib": growth,
        "memory_flat": growth < args.tolerance_mib,
        "tolerance_mib": args.tolerance_mib,
        **host_info(args.threads),
    }


def report(results: dict[str, Any]) -> str:
    lines = [f"{'frame':>6} {'RSS MiB':>9} {'tracks':>7} {'IDs seen':>9}"]
    for sample in results["samples"]:
        lines.append(
            f"{sample['frame']:>6} {sample['rss_mib']:>9.1f} {sample['tracks']:>7} "
            f"{sample['track_ids_seen']:>9}"
        )
    verdict = "flat" if results["memory_flat"] else "GROWING"
    lines.append(
        f"{results['frames_processed']}/{results['frames']} frames segmented "
        f"({results['processing_errors']} errors), {results['ms_per_frame']:.1f} ms/frame, "
        f"{results['detections']} detections; RSS start {results['rss_start_mib']:.1f} MiB, "
        f"after warm-up {results['rss_after_warmup_mib']:.1f}, end {results['rss_end_mib']:.1f} "
        f"({results['growth_after_warmup_mib']:+.1f} MiB): memory {verdict} "
        f"(tolerance {results['tolerance_mib']:g} MiB); load average "
        f"{results['load_average'][0]:.2f} on {results['cpus']} CPUs"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames (default 2000)")
    parser.add_argument("--size", type=parse_size, default=(96, 128), help="HEIGHTxWIDTH")
    parser.add_argument("--input-size", type=int, default=64, help="model input side, px")
    parser.add_argument(
        "--click-every", type=int, default=100, help="frames between clicks (re-seeds a track)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--tolerance-mib", type=float, default=16.0, help="flat if growth <")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.frames < 10 or args.click_every < 1:
        parser.error("--frames must be at least 10 and --click-every at least 1")
    results = soak(args)
    print(report(results))
    save_results(args.json, results)


if __name__ == "__main__":
    main()
