"""``seem-ros build-engine``: build (or validate) cached TensorRT engines from the ONNX graphs."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..engine.base import EngineError
from ..engine.onnx_export import DEFAULT_GROUP_COUNTS, ExportError, ExportManifest
from ..engine.selection import EngineRequest, default_cache_dir, ensure_export
from ..model.weights import WeightsError
from ..model_zoo import load_segmenter
from ..transforms import ResizeTransform
from .export import parse_counts

NAME = "build-engine"
HELP = "build TensorRT engines (FP16, optional INT8) from the ONNX graphs, cached per GPU"
LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--onnx",
        type=Path,
        help="export folder from `seem-ros export` (default: export --model first)",
    )
    source.add_argument(
        "--model",
        type=Path,
        help="weights to export first (default: $SEEM_ROS_MODEL, else the shipped demo model)",
    )
    parser.add_argument(
        "--precision",
        default="fp16",
        choices=("fp16", "fp32", "int8"),
        help="engine precision (int8 needs --int8-images)",
    )
    parser.add_argument("--workspace-mb", type=int, default=2048, help="builder workspace limit")
    parser.add_argument("--max-batch", type=int, default=1, help="encoder profile: largest batch")
    parser.add_argument("--opt-batch", type=int, default=1, help="encoder profile: tuned batch")
    parser.add_argument(
        "--groups",
        type=parse_counts,
        default=DEFAULT_GROUP_COUNTS,
        help="decoder prompt counts when exporting (default: 1,10,50)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="engine cache (default: $SEEM_ROS_CACHE, else ~/.cache/seem_ros)",
    )
    parser.add_argument(
        "--int8-images",
        type=Path,
        help="folder of calibration images, needed for --precision int8 (default: none)",
    )


def calibration_images(folder: Path, size: int) -> Iterator[dict[str, np.ndarray]]:
    """Model inputs ({"image": (1, 3, S, S) float32}) for every image file in ``folder``."""
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EngineError(f"no calibration images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise EngineError(f"cannot read calibration image {path}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        transform = ResizeTransform(rgb.shape[0], rgb.shape[1], size)
        yield {"image": transform.image_to_input(rgb)[None].astype(np.float32)}


def _manifest(args: argparse.Namespace, cache_dir: Path) -> ExportManifest:
    if args.onnx is not None:
        return ExportManifest.load(args.onnx)
    segmenter = load_segmenter(args.model, allow_untrained=args.model is None)
    request = EngineRequest(
        model=segmenter.model,
        card=segmenter.card,
        precision=args.precision,
        cache_dir=cache_dir,
        export_dir=None,
        group_counts=args.groups,
        threads=None,
        device="cpu",
    )
    return ensure_export(request)


def run(args: argparse.Namespace) -> int:
    from ..engine.tensorrt_engine import BuildOptions, TensorRTEngine, tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason:
        LOG.error("cannot build TensorRT engines here: %s", reason)
        return 2
    cache_dir = args.cache_dir or default_cache_dir()
    try:
        options = BuildOptions(
            precision=args.precision,
            workspace_mb=args.workspace_mb,
            max_batch=args.max_batch,
            opt_batch=args.opt_batch,
        )
        if args.precision == "int8" and args.int8_images is None:
            raise EngineError("--precision int8 needs --int8-images with calibration images")
        manifest = _manifest(args, cache_dir)
        calibration = None
        if args.int8_images is not None:
            folder, size = args.int8_images, manifest.image_size
            calibration = lambda: calibration_images(folder, size)  # noqa: E731
        engine = TensorRTEngine(
            manifest,
            cache_dir=cache_dir / "tensorrt" / manifest.model_sha256[:16],
            options=options,
            calibration=calibration,
        )
        plans = engine.build_all()
    except (EngineError, ExportError, WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    print(engine.describe())
    for plan in plans:
        print(f"engine -> {plan}")
    return 0
