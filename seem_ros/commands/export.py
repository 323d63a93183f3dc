"""``seem-ros export``: write the ONNX graphs (encoder, decoders, text encoder) of a model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..engine.export_manifest import DEFAULT_GROUP_COUNTS, DEFAULT_OPSET, ExportError
from ..model.weights import WeightsError
from ..transforms import frame_size_wh
from ._requirements import require

NAME = "export"
HELP = (
    "export the model to ONNX: encoder, fixed-size decoders and text encoder graphs, plus what "
    "running them without PyTorch needs"
)
LOG = logging.getLogger(__name__)


def parse_counts(text: str) -> tuple[int, ...]:
    """``"1,10,50"`` -> (1, 10, 50); an argparse type, so errors become usage messages."""
    try:
        counts = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from error
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"counts must be positive integers, got {text!r}")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        help="weights, .safetensors (default: $SEEM_ROS_MODEL, else the shipped demo model)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the graphs + manifest")
    parser.add_argument(
        "--groups",
        type=parse_counts,
        default=DEFAULT_GROUP_COUNTS,
        help="prompted-object counts to export decoder graphs for (default: 1,10,50)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (>= 17)")
    parser.add_argument(
        "--no-text-encoder", action="store_true", help="skip the text encoder graph"
    )
    parser.add_argument(
        "--frame-size",
        type=parse_frame_size,
        help="the camera's WIDTHxHEIGHT (e.g. 640x480): the encoder is exported for that "
        "frame's padded input, so objects keep the model's scale; our models letterbox frames of "
        "other shapes into it, official models need it (default: a square frame)",
    )


def parse_frame_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480); an argparse type (``bench --size`` uses it too)."""
    try:
        return frame_size_wh(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    if not require(NAME, ("torch", "onnx"), "onnx"):
        return 2
    from ..engine.onnx_export import export_model
    from ..model_zoo import load_segmenter

    try:
        segmenter = load_segmenter(args.model, allow_untrained=args.model is None)
        input_hw = None
        if args.frame_size is not None:
            input_hw = segmenter.transform_for(args.frame_size[1], args.frame_size[0]).input_hw
        manifest = export_model(
            segmenter.model,
            segmenter.card,
            args.out,
            group_counts=args.groups,
            opset=args.opset,
            text_encoder=not args.no_text_encoder,
            input_hw=input_hw,
        )
    except (ExportError, WeightsError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    for name, digest in manifest.graph_sha256.items():
        print(f"{manifest.path(name)}  sha256 {digest[:16]}")
    print(f"manifest -> {manifest.folder / 'manifest.json'}")
    return 0
