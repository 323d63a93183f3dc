"""``seem-ros convert SRC --out DST.safetensors``: an official SEEM v1 checkpoint -> our
safetensors + model card (config detected from the keys, every key and shape checked)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._requirements import require

NAME = "convert"
HELP = "convert an official SEEM v1 checkpoint (.pt or .safetensors) to seem_ros weights + card"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="SRC",
        type=Path,
        help="official checkpoint: .pt (read with weights_only=True) or .safetensors",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="converted weights (.safetensors; card beside)"
    )
    parser.add_argument(
        "--fp16", action="store_true", help="store half-precision weights (half the file)"
    )


def run(args: argparse.Namespace) -> int:
    if not require(NAME, ("torch",), "torch"):
        return 2
    import torch

    from ..model.build import card_path_for, save_model
    from ..model.official.convert import convert_checkpoint
    from ..model.weights import WeightsError

    if args.out.suffix != ".safetensors":
        LOG.error("--out must name a .safetensors file, got %s", args.out)
        return 2
    if not args.source.is_file():
        LOG.error("checkpoint not found: %s", args.source)
        return 2
    try:
        model, card, report = convert_checkpoint(args.source, progress=True)
    except WeightsError as error:
        LOG.error("%s", error)
        return 2
    path = save_model(model, args.out, card, dtype=torch.float16 if args.fp16 else None)
    LOG.info("config %s: %s", report.config, report.describe())
    print(f"converted {args.source.name} ({report.config}) -> {path} + {card_path_for(path)}")
    return 0
