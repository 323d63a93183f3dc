"""``seem-ros distill --shards SHARDS/ --student CONFIG --out S.safetensors``: train a student
on a teacher's shards (``seem-ros label``); resumes from ``<out>.run/`` automatically."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ._arg_types import non_negative_int, positive_int

NAME = "distill"
HELP = "train a fast student on a teacher's labelled shards (seem-ros label), resumably"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..distill.config import DistillConfig

    defaults = DistillConfig(shards="", out="")
    parser.add_argument("--shards", type=Path, required=True, help="what seem-ros label wrote")
    parser.add_argument(
        "--student",
        default=defaults.student,
        help="the student's size: a model config name (student_nano, tiny, tiny_timm, ...) or "
        "a YAML path; its text section is replaced by the teacher's text tower",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="the student's weights, .safetensors (+ card)"
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        help="the teacher's weights (default: the path in the shards' manifest; the sha256 "
        "must match): the student embeds text with the teacher's text tower",
    )
    parser.add_argument("--steps", type=positive_int, default=defaults.steps, help="total steps")
    parser.add_argument(
        "--batch", type=positive_int, default=defaults.batch, help="frames per step"
    )
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    parser.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        default=defaults.warmup_steps,
        help="linear warm-up, then a cosine decay to the last step",
    )
    parser.add_argument(
        "--max-answers",
        type=positive_int,
        default=defaults.max_answers,
        help="prompted answers trained per frame per step",
    )
    parser.add_argument(
        "--held-out",
        type=float,
        default=defaults.held_out,
        help="share of frames held out to measure teacher-student agreement",
    )
    parser.add_argument(
        "--eval-every",
        type=positive_int,
        default=defaults.eval_every,
        help="steps between agreements",
    )
    parser.add_argument(
        "--eval-frames",
        type=positive_int,
        default=defaults.eval_frames,
        help="held-out frames each agreement measurement uses",
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, default=defaults.checkpoint_every, help="steps"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="initialisation and batch order (default: 0)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=defaults.threads, help="torch threads"
    )
    parser.add_argument(
        "--no-init-from-teacher",
        action="store_true",
        help="start from random weights instead of slices of a same-family teacher's",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        help="start from an earlier student of the same teacher, .safetensors: its leading "
        "slices where the sizes differ, e.g. a new input size with a narrower backbone "
        "(default: none)",
    )
    parser.add_argument(
        "--backbone-weights",
        type=Path,
        help="a local timm classification checkpoint for a student with a timm backbone "
        "(default: none: teacher slices or random weights)",
    )


def run(args: argparse.Namespace) -> int:
    from ..distill.config import DistillConfig
    from ..distill.shards import ShardError
    from ..distill.trainer import Distiller, DistillError
    from ..model.weights import WeightsError

    config = DistillConfig(
        shards=str(args.shards),
        out=str(args.out),
        student=args.student,
        teacher=str(args.teacher) if args.teacher else None,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        max_answers=args.max_answers,
        held_out=args.held_out,
        eval_every=args.eval_every,
        eval_frames=args.eval_frames,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        threads=args.threads,
        init_from_teacher=not args.no_init_from_teacher,
        init_from=str(args.init_from) if args.init_from else None,
        backbone_weights=str(args.backbone_weights) if args.backbone_weights else None,
    )
    try:
        distiller = Distiller(config)
    except (DistillError, ShardError, WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    result = distiller.train()
    LOG.info("held-out agreement: %s", json.dumps(result))
    LOG.info("student -> %s (run folder %s)", config.out, distiller.run_dir)
    return 0
