"""``seem-ros build-engine``: build (or validate) cached TensorRT engines from the ONNX graphs.

Works on TensorRT 10.x (JetPack 6: FP16 by builder flag) and 11.x (PyPI: FP16 from an FP16 copy
of the graph); after each build the engine's layer precisions are read back and printed, and an
engine asked to be FP16 that is not is refused. INT8 is not offered: see
:mod:`seem_ros.engine.tensorrt_engine`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..engine.base import EngineError
from ..engine.export_manifest import DEFAULT_GROUP_COUNTS, ExportError, ExportManifest
from ..engine.selection import EngineRequest, default_cache_dir, ensure_export
from ..model.weights import WeightsError
from ._requirements import require
from .export import parse_counts

NAME = "build-engine"
HELP = "build TensorRT 10/11 engines (FP16 or FP32) from the ONNX graphs, cached per GPU"
LOG = logging.getLogger(__name__)


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
        choices=("fp16", "fp32"),
        help="engine precision, read back from the built engine (no INT8: it needs Q/DQ "
        "nodes in the graph, which the exporter does not make)",
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


def _manifest(args: argparse.Namespace, cache_dir: Path) -> ExportManifest:
    if args.onnx is not None:
        return ExportManifest.load(args.onnx)
    from ..model_zoo import load_segmenter

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
    if args.onnx is None and not require(f"{NAME} --model", ("torch",), "torch"):
        return 2  # without PyTorch: --onnx FOLDER of `seem-ros export`
    cache_dir = args.cache_dir or default_cache_dir()
    try:
        options = BuildOptions(
            precision=args.precision,
            workspace_mb=args.workspace_mb,
            max_batch=args.max_batch,
            opt_batch=args.opt_batch,
        )
        manifest = _manifest(args, cache_dir)
        engine = TensorRTEngine(
            manifest,
            cache_dir=cache_dir / "tensorrt" / manifest.model_sha256[:16],
            options=options,
        )
        plans = engine.build_all()
    except (EngineError, ExportError, WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    print(engine.describe())
    for plan, built in zip(plans, engine.built_summaries()):
        print(f"engine -> {plan}: {built}")
    return 0
