"""``seem-ros release --from RUN_WEIGHTS --out models/NAME.safetensors``: turn a training run's
weights into a shipped model: half-precision safetensors plus a model card whose ``metrics``
are the benchmark of the shipped file itself (on the test split by default), robustness variants
included, so every card shows how far the model falls off the clean world."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ._requirements import require

NAME = "release"
HELP = "write a trained model as a shipped model (fp16 safetensors + card with its benchmark)"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", type=Path, required=True, help="trained weights")
    parser.add_argument("--out", type=Path, required=True, help="shipped weights (.safetensors)")
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "val"),
        help="split the card's metrics are measured on",
    )
    parser.add_argument(
        "--scenes", type=int, default=50, help="scenes for interactive/referring/generic"
    )
    parser.add_argument("--clips", type=int, default=8, help="clips for video")
    parser.add_argument("--cases", type=int, default=50, help="open-vocab and composition cases")
    parser.add_argument(
        "--robustness",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the robustness variants (seem-ros eval --robustness) for the card "
        "(default: on)",
    )
    parser.add_argument(
        "--frame-size",
        type=int,
        help="side of the benchmark's square frames (default: the model's input size); a "
        "distilled student is measured on its teacher's frames",
    )
    parser.add_argument(
        "--note", default="", help="added to the card's provenance (default: no note)"
    )
    parser.add_argument(
        "--json", type=Path, help="also write the benchmark here (default: not written)"
    )


def run(args: argparse.Namespace) -> int:
    if not require(NAME, ("torch",), "torch"):
        return 2
    import torch

    from ..eval.benchmark import SECTIONS, Benchmark, BenchmarkSize, flatten
    from ..model.build import card_path_for, load_model, save_model
    from ..model.weights import WeightsError
    from ..segmenter import Segmenter

    try:
        model, card = load_model(args.source)
    except WeightsError as error:
        LOG.error("%s", error)
        return 2
    if args.note:
        card.provenance["note"] = args.note
    card.provenance["released_from"] = str(args.source)
    shipped = save_model(model, args.out, card, dtype=torch.float16)
    size = BenchmarkSize(scenes=args.scenes, clips=args.clips, cases=args.cases)
    benchmark = Benchmark(
        Segmenter.from_pretrained(shipped),
        split=args.split,
        size=size,
        frame_size=args.frame_size,
    )
    sections = SECTIONS + (("robustness",) if args.robustness else ())
    report = benchmark.run(sections)
    card.metrics = {
        "split": args.split,
        "sizes": report["sizes"],
        "frame_size": benchmark.frame_size,
        **flatten(report),
    }
    card.save(card_path_for(shipped))  # the checksum covers the weights, not the card
    if args.json:
        args.json.write_text(json.dumps(report | flatten(report), indent=2) + "\n")
    for key, value in flatten(report).items():
        print(f"{key:32s} {value:10.4f}")
    print(f"shipped -> {shipped} ({shipped.stat().st_size / 1e6:.1f} MB)")
    return 0
