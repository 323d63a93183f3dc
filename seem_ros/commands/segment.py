"""``seem-ros segment IMAGE ...``: segment one image file with any prompts; overlay + JSON out.

All object prompts given (``--refer``, ``--point``, ``--box``, ``--scribble``, ``--mask``,
``--ref-image``/``--ref-mask``) describe ONE object and are composed; ``--classes`` asks for
generic segmentation of those classes at the same time.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from ..model.weights import WeightsError
from ..model_zoo import load_segmenter
from ..prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    ObjectPrompt,
    Points,
    PromptError,
    PromptSet,
    ReferenceRegion,
    ReferringText,
    Scribble,
)
from ..segmenter import ImageError
from ..visualize import draw_overlay

NAME = "segment"
HELP = "segment one image with class names, text, clicks, boxes, scribbles, masks or a reference"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="input image (PNG/JPEG)")
    parser.add_argument("--classes", help='class names for generic segmentation, "a;b;c"')
    parser.add_argument("--task", default="instance", choices=("instance", "panoptic", "semantic"))
    parser.add_argument("--refer", help="referring phrase for the object")
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,0|1]",
        help="click in pixels; third value 1 = positive (default), 0 = negative; repeatable",
    )
    parser.add_argument("--box", metavar="X0,Y0,X1,Y1", help="box around the object, pixels")
    parser.add_argument(
        "--scribble",
        action="append",
        default=[],
        metavar="X,Y;X,Y;...",
        help="polyline over the object; repeatable",
    )
    parser.add_argument("--mask", type=Path, help="mask of the object (PNG, non-zero = object)")
    parser.add_argument("--ref-image", type=Path, help="another image showing the object")
    parser.add_argument("--ref-mask", type=Path, help="mask of the object in --ref-image")
    parser.add_argument(
        "--model", type=Path, help="weights (.safetensors); default: the demo model"
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="generic score threshold")
    parser.add_argument("--out", type=Path, required=True, help="overlay PNG to write")
    parser.add_argument("--json", type=Path, help="write instances as JSON here")


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as error:
        raise PromptError(f"{what}: {text!r} is not a list of numbers") from error
    if len(values) not in count:
        raise PromptError(f"{what}: expected {' or '.join(map(str, count))} numbers, got {text!r}")
    return values


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ImageError(f"cannot read mask {path}")
    return mask > 0


def prompts_from_args(args: argparse.Namespace) -> PromptSet:
    prompt_set = PromptSet()
    if args.classes is not None:
        prompt_set.classes = ClassNames.parse(args.classes)
    parts: dict[str, object] = {}
    if args.refer is not None:
        parts["text"] = ReferringText(args.refer)
    if args.point:
        clicks = [_numbers(p, (2, 3), "--point") for p in args.point]
        coords = np.array([c[:2] for c in clicks])
        labels = np.array([int(c[2]) if len(c) == 3 else 1 for c in clicks])
        parts["points"] = Points(coords, labels)
    if args.box:
        parts["box"] = Box(*_numbers(args.box, (4,), "--box"))
    if args.scribble:
        parts["scribbles"] = tuple(
            Scribble(np.array([_numbers(p, (2,), "--scribble") for p in s.split(";") if p.strip()]))
            for s in args.scribble
        )
    if args.mask:
        parts["mask"] = MaskPrompt(read_mask(args.mask))
    if (args.ref_image is None) != (args.ref_mask is None):
        raise PromptError("--ref-image and --ref-mask go together")
    if args.ref_image:
        parts["reference"] = ReferenceRegion(read_rgb(args.ref_image), read_mask(args.ref_mask))
    if parts:
        prompt_set.objects.append(ObjectPrompt(**parts))  # type: ignore[arg-type]
    return prompt_set


def run(args: argparse.Namespace) -> int:
    try:
        image = read_rgb(args.image)
        prompts = prompts_from_args(args)
        segmenter = load_segmenter(
            args.model, allow_untrained=args.model is None, score_threshold=args.threshold
        )
        result = segmenter.segment(image, prompts, task=args.task)
    except (PromptError, ImageError, WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(draw_overlay(image, result), cv2.COLOR_RGB2BGR))
    summary = result.to_dict()
    summary["model"] = {"trained": segmenter.card.trained, "config": segmenter.card.config.name}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    for instance in result.instances:
        print(
            f"{instance.label:24s} score {instance.score:.2f} "
            f"box {instance.box} area {instance.area}"
        )
    print(f"overlay -> {args.out}")
    return 0
