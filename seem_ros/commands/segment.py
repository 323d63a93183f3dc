"""``seem-ros segment IMAGE... --out OUT``: segment image files with any prompts; overlays + JSON.

All object prompts given (``--refer``, ``--point``, ``--box``, ``--scribble``, ``--mask``,
``--ref-image``/``--ref-mask``) describe ONE object and are composed; ``--classes`` asks for
generic segmentation of those classes at the same time. Several images (or folders of them)
share one model load; ``--out`` is then a folder with one overlay per image.

``--model`` takes weights (``.safetensors``, run by PyTorch) or an export folder
(``seem-ros export``), which runs on TensorRT or ONNX Runtime (``--backend``) without PyTorch.

Exit status: 0 when every image was segmented; 2 when the arguments, the prompts, the model or
an image cannot be used (the other images are still segmented), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..engine.base import EngineError
from ..model.weights import WeightsError
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

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
NAME = "segment"
HELP = "segment images with class names, text, clicks, boxes, scribbles, masks or a reference"
LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
EXIT_CANNOT_RUN = 2


def unit_interval(text: str) -> float:
    """argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a score; give a number from 0 to 1")
    return value


def torch_device(text: str) -> str:
    """argparse type: a torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:1``);
    without PyTorch (an export folder's run) only ``cpu``, the default, which it ignores."""
    try:
        import torch
    except ImportError:
        if text == "cpu":
            return text
        raise argparse.ArgumentTypeError(
            f"{text}: --device is PyTorch's and PyTorch is not installed; an export folder's "
            "--backend picks its own devices"
        ) from None
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device; e.g. cpu, cuda, cuda:1"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{text}: CUDA is not available here (torch {torch.__version__}); use cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type not in ("cpu", "mps"):
        raise argparse.ArgumentTypeError(f"{text}: use cpu or cuda[:N]")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        type=Path,
        nargs="+",
        metavar="IMAGE",
        help="input images (PNG, JPEG, ...) or folders of them; one model load serves them all",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="overlay to write: an image file (.png, .jpg) for one image; a folder for several "
        "(or for a folder input), with one NAME.png per input",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="also write the instances as JSON to this file (default: not written; with "
        'several images, one file with an "images" list)',
    )
    parser.add_argument(
        "--classes",
        help='class names for generic segmentation, "a;b;c" (default: none, unless no object '
        "prompt is given either: then the model card's vocabulary)",
    )
    parser.add_argument(
        "--task",
        default="instance",
        choices=("instance", "panoptic", "semantic"),
        help="what generic segmentation returns: things as instances, things + stuff "
        "(panoptic), or one segment per class (semantic)",
    )
    parser.add_argument(
        "--threshold",
        type=unit_interval,
        default=0.5,
        help="keep generic instances scoring at least this (0..1)",
    )
    parser.add_argument(
        "--refer", help="referring phrase for the object, e.g. 'the red star' (default: none)"
    )
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,0|1]",
        help="click in pixels; third value 1 = positive (the default), 0 = negative; "
        "repeatable (default: no clicks)",
    )
    parser.add_argument(
        "--box", metavar="X0,Y0,X1,Y1", help="box around the object, pixels (default: none)"
    )
    parser.add_argument(
        "--scribble",
        action="append",
        default=[],
        metavar="X,Y;X,Y;...",
        help="polyline over the object, pixels; repeatable (default: none)",
    )
    parser.add_argument(
        "--mask", type=Path, help="mask of the object, PNG, non-zero = object (default: none)"
    )
    parser.add_argument(
        "--ref-image", type=Path, help="another image showing the object (default: none)"
    )
    parser.add_argument(
        "--ref-mask", type=Path, help="mask of the object in --ref-image (default: none)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="weights (.safetensors, run by PyTorch) or an export folder (seem-ros export, run "
        "without PyTorch) (default: $SEEM_ROS_MODEL, else the shipped demo model)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="inference backend (default: auto for an export folder, which tries tensorrt then "
        "onnxruntime; torch for weights, which other backends run from graphs exported into "
        "the cache)",
    )
    parser.add_argument(
        "--device",
        type=torch_device,
        default="cpu",
        help="torch device for weights: cpu, cuda, cuda:1, ...",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown for several images)"
    )


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as error:
        raise PromptError(f"{what}: {text!r} is not a list of numbers") from error
    if len(values) not in count:
        raise PromptError(f"{what}: expected {' or '.join(map(str, count))} numbers, got {text!r}")
    return values


def _read(path: Path, flags: int, what: str) -> np.ndarray:
    """Decode an image file, with our error (and no OpenCV warning) when it cannot be read."""
    if not path.is_file():
        raise ImageError(f"{what} not found: {path}")
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    if image is None:
        raise ImageError(f"cannot read {what} {path}: not an image format OpenCV can decode")
    return image


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(_read(path, cv2.IMREAD_COLOR, "image"), cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    return _read(path, cv2.IMREAD_GRAYSCALE, "mask") > 0


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


def input_images(paths: list[Path]) -> list[Path]:
    """The image files named, folders expanded to their images (sorted by name)."""
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise ImageError(f"image not found: {path}")
    return images


def overlay_paths(images: list[Path], out: Path, *, folder: bool) -> list[Path]:
    """Where each overlay goes: ``out`` itself, or ``out/NAME.png`` per image."""
    if not folder:
        if not cv2.haveImageWriter(str(out)):
            raise ImageError(
                f"--out {out}: OpenCV cannot write {out.suffix or 'a file without an extension'}; "
                "name an image file (.png, .jpg), or a folder for several images"
            )
        return [out]
    if out.exists() and not out.is_dir():
        raise ImageError(f"--out {out} is a file; several images need a folder")
    paths = [out / f"{image.stem}.png" for image in images]
    repeated = sorted({p.name for p in paths if paths.count(p) > 1})
    if repeated:
        raise ImageError(f"several inputs would write the same overlay {repeated} in {out}")
    return paths


def _report(result: Any, write: Any) -> None:
    for instance in result.instances:
        if instance.source == "prompt" and not instance.found:
            write(
                f"{instance.label:24s} NOT FOUND: the model's mask for it is empty "
                f"(score {instance.score:.2f})"
            )
            continue
        write(
            f"{instance.label:24s} score {instance.score:.2f} "
            f"box {instance.box} area {instance.area}"
        )


def load_model(args: argparse.Namespace) -> Any:
    """The segmenter ``--model`` and ``--backend`` ask for (see the module docstring)."""
    from ..model_zoo import load_segmenter
    from ..runtime.export_folder import is_export_folder

    settings: dict[str, Any] = {"score_threshold": args.threshold, "device": args.device}
    exported = args.model is not None and is_export_folder(args.model)
    if exported or args.backend in (None, "torch"):
        backend = args.backend or "auto"
        return load_segmenter(
            args.model, allow_untrained=args.model is None, backend=backend, **settings
        )
    from ..engine.selection import load_segmenter_with_backend

    return load_segmenter_with_backend(
        args.model, backend=args.backend, allow_untrained=args.model is None, **settings
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..model_zoo import describe
    from ..visualize import draw_overlay

    try:
        images = input_images(args.images)
        folder = len(images) > 1 or any(p.is_dir() for p in args.images) or args.out.is_dir()
        outputs = overlay_paths(images, args.out, folder=folder)
        prompts = prompts_from_args(args)
        segmenter = load_model(args)
    except (PromptError, ImageError, WeightsError, EngineError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return EXIT_CANNOT_RUN
    model = {
        "trained": segmenter.card.trained,
        "config": segmenter.card.config.name,
        "description": describe(segmenter.card),
    }
    records: list[dict[str, Any]] = []
    failed = 0
    progress = tqdm(images, desc="images", unit="image", disable=args.no_progress or not folder)
    for image_path, out in zip(progress, outputs):
        try:
            image = read_rgb(image_path)
            result = segmenter.segment(image, prompts, task=args.task)
        except (PromptError, ImageError) as error:
            LOG.error("%s: %s", image_path, error)
            failed += 1
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        overlay = draw_overlay(image, result, prompts=prompts)
        cv2.imwrite(str(out), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        write = progress.write if folder else print
        if folder:
            write(f"{image_path}:")
        _report(result, write)
        records.append({"image": str(image_path), **result.to_dict()})
    if args.json and records:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            summary: dict[str, Any] = {"model": model, "images": records}
        else:
            summary = {**records[0], "model": model}
            summary.pop("image")
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"overlay{'s' if folder else ''} -> {args.out}")
    return EXIT_CANNOT_RUN if failed else 0
