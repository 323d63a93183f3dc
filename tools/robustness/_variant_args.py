"""The command line the robustness studies share: a model, a split, clips per variant, the
variants, where to write the results and how many torch threads to use."""

from __future__ import annotations

import argparse
from pathlib import Path

FRAME_SHAPE_VARIANTS = ["clean", "frame_640x480", "frame_1280x720"]


def variant_study_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", type=Path, help="weights (.safetensors)")
    parser.add_argument("--split", choices=("val", "test"), default="val", help="(default: val)")
    parser.add_argument("--clips", type=int, default=40, help="clips per variant (default: 40)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=FRAME_SHAPE_VARIANTS,
        help="robustness variants (default: clean and the two frame shapes)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    return parser


def parse_study_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed command line, with torch limited to ``--threads`` when given."""
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args
