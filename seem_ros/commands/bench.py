"""``seem-ros bench``: latency, memory and FLOP utilisation of every backend, versus peers."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..benchmark import ALL_BACKENDS
from ..model.weights import WeightsError
from ._requirements import require
from .export import parse_counts, parse_frame_size

NAME = "bench"
HELP = "benchmark the backends (encode, decode per prompt count, end to end) against peers"
LOG = logging.getLogger(__name__)


def parse_backends(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if names == ("all",):
        return ALL_BACKENDS
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"backends are {', '.join(ALL_BACKENDS)} or all; got {text!r}"
        )
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        type=parse_backends,
        default=ALL_BACKENDS,
        help="comma-separated backends, or all (default: all; missing ones are skipped)",
    )
    parser.add_argument(
        "--size",
        type=parse_frame_size,
        default=(640, 480),
        help="camera frame WxH (default: 640x480)",
    )
    parser.add_argument(
        "--prompts",
        type=parse_counts,
        default=(1, 10, 50),
        help="prompted-object counts to time decode with (default: 1,10,50)",
    )
    parser.add_argument(
        "--json", type=Path, help="write the full result as JSON here (default: printed only)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="weights, .safetensors (default: $SEEM_ROS_MODEL, else the shipped demo model)",
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time SAM ViT-B and a MobileSAM-class peer",
    )
    parser.add_argument("--peer-size", type=int, default=1024, help="peer input side (SAM: 1024)")
    parser.add_argument("--peer-repeats", type=int, default=3, help="timed runs per peer")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="exported graphs / engines cache (default: $SEEM_ROS_CACHE, else ~/.cache/seem_ros)",
    )


def run(args: argparse.Namespace) -> int:
    if not require(NAME, ("torch", "onnxruntime"), "eval"):
        return 2
    from ..benchmark.harness import BenchSettings, format_table, run_benchmark

    try:
        settings = BenchSettings(
            backends=args.backend,
            frame_size=args.size,
            prompt_counts=args.prompts,
            repeats=args.repeats,
            warmup=args.warmup,
            peers=args.peers,
            peer_image_size=args.peer_size,
            peer_repeats=args.peer_repeats,
            model_path=args.model,
            cache_dir=args.cache_dir,
        )
        result = run_benchmark(settings)
    except (ValueError, WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"json -> {args.json}")
    return 0
