"""What the prompted-mask rules after decoding cost (object continuity, negative-click cut).

Object continuity runs on every followed object in every frame, so its cost is timed per mask
at camera frame sizes: a one-part mask (the common case, decided on a coarse copy) and a
two-part mask (a look-alike lit up beside the object, labelled at full size). Then one
followed object is decoded on the sample clip's second frame with the rules on and off, with
the shipped demo model on PyTorch.

Usage: python benchmarks/mask_rules.py [--repeats 200] [--threads 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from _common import host_info, sample_clip, save_results  # also puts seem_ros on sys.path

from seem_ros.model_zoo import DEMO_MODEL_NAME
from seem_ros.object_continuity import keep_parts_near
from seem_ros.prompts import ObjectPrompt, Points, ReferenceRegion
from seem_ros.segmenter import Segmenter

FRAME_SIZES = ((480, 640), (720, 1280))
DEMO = Path(__file__).resolve().parents[1] / "models" / DEMO_MODEL_NAME


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def continuity_per_mask(hw: tuple[int, int], repeats: int) -> dict[str, float]:
    """An object a quarter of the frame's height across, moved by 2% since its last mask."""
    height, width = hw
    side = height // 4
    previous = np.zeros(hw, dtype=bool)
    previous[side : 2 * side, side : 2 * side] = True
    one_part = np.roll(previous, height // 50, axis=0)
    two_parts = one_part.copy()
    two_parts[2 * side + side // 2 : 3 * side + side // 2, width - 2 * side : width - side] = True
    return {
        "one_part_ms": median_ms(lambda: keep_parts_near(one_part, previous), repeats),
        "two_parts_ms": median_ms(lambda: keep_parts_near(two_parts, previous), repeats),
    }


def followed_decode(repeats: int) -> dict[str, float]:
    """One followed object (memory + reference) decoded on a 480x640 frame, rules on and off."""
    segmenter = Segmenter.from_pretrained(DEMO)
    clip = sample_clip(2, (480, 640))
    first_frame = clip.frames[0]
    biggest = max(first_frame.thing_segments, key=lambda s: s.area)
    ys, xs = np.nonzero(biggest.mask)
    click = Points.single(float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    first = segmenter.segment(first_frame.image, ObjectPrompt(points=click)).instances[0]
    follow = ObjectPrompt(
        memory=first.memory, reference=ReferenceRegion(first_frame.image, first.mask)
    )
    encoded = segmenter.encode_image(clip.frames[1].image)
    segmenter.decode(encoded, follow)  # the reference token is cached after the first decode
    result = {"rules_on_ms": median_ms(lambda: segmenter.decode(encoded, follow), repeats)}
    with segmenter.network_masks():
        result["rules_off_ms"] = median_ms(lambda: segmenter.decode(encoded, follow), repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls (default: 200)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    report: dict[str, Any] = {"host": host_info(args.threads), "repeats": args.repeats}
    print("| object continuity, one followed mask | one part | two parts |")
    print("| --- | --- | --- |")
    for hw in FRAME_SIZES:
        row = continuity_per_mask(hw, args.repeats)
        report[f"continuity_{hw[0]}x{hw[1]}"] = row
        print(f"| {hw[1]}x{hw[0]} | {row['one_part_ms']:.2f} ms | {row['two_parts_ms']:.2f} ms |")
    decode = followed_decode(max(20, args.repeats // 5))
    report["followed_decode_480x640"] = decode
    print(
        f"decode of one followed object, 640x480: rules on {decode['rules_on_ms']:.2f} ms, "
        f"off {decode['rules_off_ms']:.2f} ms"
    )
    save_results(args.json, report)


if __name__ == "__main__":
    main()
