"""``seem-ros train --config ...``: train SEEM on the procedural world (resumes automatically)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._requirements import require

NAME = "train"
HELP = "train SEEM on the procedural world (generic + referring + interactive + video losses)"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="training YAML (see config/train_tiny.yaml)"
    )
    parser.add_argument(
        "--steps", type=int, help="total number of steps (default: the training YAML's steps)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where checkpoints and logs go (default: the training YAML's out_dir)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads, 1 is faster on a busy machine (default: the training YAML's threads)",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        help="start from these weights, .safetensors (default: the training YAML's init_from, "
        "else fresh weights)",
    )
    parser.add_argument(
        "--export",
        type=Path,
        help="when done, also write the model here, .safetensors + card (default: only "
        "model.safetensors in the run folder)",
    )


def run(args: argparse.Namespace) -> int:
    if not require(NAME, ("torch",), "train"):
        return 2
    from ..train.config import TrainConfig
    from ..train.trainer import Trainer

    config = TrainConfig.load(args.config)
    if args.steps is not None:
        config.steps = args.steps
    if args.out_dir is not None:
        config.out_dir = str(args.out_dir)
    if args.threads is not None:
        config.threads = args.threads
    if args.init_from is not None:
        config.init_from = str(args.init_from)
    trainer = Trainer(config)
    history = trainer.train()
    if history:
        LOG.info("last losses: %s", history[-1])
    if args.export:
        LOG.info("model -> %s", trainer.export(args.export))
    return 0
