"""J&F of one model on robustness variants over more clips than the benchmark's 8, with a
bootstrap spread: the benchmark's per-variant J&F rests on 16 followed objects, and one lost
object moves it by about 0.06, so a "drop" from clean can be the clips' content rather than
the variant.

    python tools/robustness/jf_over_clips.py models/seem_tiny_demo.safetensors \
        --split val --clips 40 --variants clean frame_640x480 frame_1280x720
"""

from __future__ import annotations

import json

import numpy as np
from _variant_args import (  # a sibling module: run this file as a script
    parse_study_args,
    variant_study_parser,
)

from seem_ros.eval.benchmark import Benchmark
from seem_ros.eval.robustness import VariantWorld, follow_clips
from seem_ros.segmenter import Segmenter

BENCHMARK_CLIPS = 8


def variant_jf(benchmark: Benchmark, variant: str, clips: int) -> dict[str, float | int]:
    """Mean J&F over the variant's first ``clips`` clips (as ``seem-ros eval --robustness``
    follows them), the bootstrap standard deviation of that mean, and the mean over the
    benchmark's 8."""
    world = VariantWorld(variant, benchmark.split, benchmark.frame_size, benchmark.size.clip_frames)
    per_object = np.array([score["jf"] for score in follow_clips(benchmark, world, clips).scores])
    rng = np.random.default_rng(0)
    resampled = [rng.choice(per_object, size=per_object.size).mean() for _ in range(2000)]
    first = BENCHMARK_CLIPS * benchmark.size.objects_per_clip
    return {
        "jf": round(float(per_object.mean()), 4),
        "objects": int(per_object.size),
        "bootstrap_sd": round(float(np.std(resampled)), 4),
        "jf_first_8_clips": round(float(per_object[:first].mean()), 4),
    }


def main() -> None:
    parser = variant_study_parser(__doc__.split("\n\n")[0])
    args = parse_study_args(parser)
    benchmark = Benchmark(Segmenter.from_pretrained(args.model), split=args.split, frame_size=256)
    results = {variant: variant_jf(benchmark, variant, args.clips) for variant in args.variants}
    report = {"model": str(args.model), "split": args.split, "clips": args.clips, **results}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
