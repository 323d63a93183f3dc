"""``seem-ros eval``: the benchmark table (interactive, referring, generic, video, open-vocab,
composition, video_hard, paraphrase; with ``--robustness`` also every metric per robustness
variant) on a fixed split of the procedural world, printed and written as JSON."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..eval.benchmark import SECTIONS
from ..model.weights import WeightsError
from ._requirements import require

NAME = "eval"
HELP = "benchmark a model on the procedural world's val or test split"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        help="weights, .safetensors (default: $SEEM_ROS_MODEL, else the shipped demo model)",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "val"),
        help="split of the procedural world to measure on (val: for choosing models)",
    )
    parser.add_argument(
        "--json", type=Path, help="also write the results here (default: printed only)"
    )
    parser.add_argument(
        "--scenes", type=int, default=50, help="scenes for interactive/referring/generic"
    )
    parser.add_argument("--clips", type=int, default=8, help="clips for video")
    parser.add_argument("--clip-frames", type=int, default=30, help="frames per clip")
    parser.add_argument("--cases", type=int, default=50, help="open-vocab and composition cases")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated subset (robustness is one more, also added by --robustness)",
    )
    parser.add_argument(
        "--robustness",
        action="store_true",
        help="also measure robustness variants (other seeds, photo textures, camera "
        "degradations, lighting, 640x480 and 1280x720 frames)",
    )
    parser.add_argument(
        "--robustness-scenes",
        type=int,
        help="scenes per robustness variant (default: --scenes); fewer only to save time",
    )
    parser.add_argument(
        "--robustness-clips",
        type=int,
        help="clips per robustness variant (default: --clips); fewer only to save time",
    )
    parser.add_argument(
        "--frame-size",
        type=int,
        help="side of the rendered square frames (default: the model's input size); the "
        "teacher's size measures a student on its teacher's frames",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def format_table(report: dict) -> str:
    from ..eval.benchmark import flatten

    lines = [f"{'metric':32s} {'value':>10s}", "-" * 43]
    for key, value in flatten(report).items():
        lines.append(f"{key:32s} {value:10.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not require(NAME, ("torch",), "torch"):
        return 2
    from ..eval.benchmark import Benchmark, BenchmarkSize, flatten
    from ..model_zoo import load_segmenter

    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    if args.robustness and "robustness" not in sections:
        sections += ("robustness",)
    unknown = set(sections) - {*SECTIONS, "robustness"}
    if unknown:
        LOG.error("unknown sections %s; choose from %s", sorted(unknown), (*SECTIONS, "robustness"))
        return 2
    try:
        segmenter = load_segmenter(args.model)
    except (WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    size = BenchmarkSize(
        scenes=args.scenes, clips=args.clips, clip_frames=args.clip_frames, cases=args.cases
    )
    benchmark = Benchmark(
        segmenter,
        split=args.split,
        size=size,
        progress=not args.no_progress,
        robustness_scenes=args.robustness_scenes,
        robustness_clips=args.robustness_clips,
        frame_size=args.frame_size,
    )
    report = benchmark.run(sections)
    report["model"] = {
        "config": segmenter.card.config.name,
        "trained": segmenter.card.trained,
        "weights_sha256": segmenter.card.weights_sha256,
        "frame_size": benchmark.frame_size,
    }
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report | flatten(report), indent=2) + "\n")
        print(f"results -> {args.json}")
    return 0
