"""Load the segmenter a node runs, as its parameters ask: weights, backend, precision, device.

``model_path`` may name an export folder (``seem-ros export``): the node then runs it on
TensorRT or ONNX Runtime (``backend``: ``auto`` tries them in that order) without PyTorch.

Shared by the node and bag processing so they load the same model the same way, and fail
the same way: missing or corrupt weights raise :class:`~seem_ros.model.weights.WeightsError` (or
``FileNotFoundError`` when no model is given and no demo model is installed), an unusable
backend :class:`~seem_ros.engine.base.EngineError`, a wrong ``input_size``
:class:`~seem_ros.ros.params.ParamError`.
"""

from __future__ import annotations

import logging

from seem_ros.engine.selection import create_engine
from seem_ros.model_zoo import load_segmenter
from seem_ros.ros.params import NodeParams, ParamError
from seem_ros.runtime.export_folder import is_export_folder
from seem_ros.segmenter import Segmenter

LOG = logging.getLogger(__name__)
LOAD_ERRORS_HELP = (
    "check model_path (a .safetensors file with its .json model card beside it, or an export "
    "folder made by seem-ros export)"
)


def resolve_device(device: str) -> str:
    """``auto``: CUDA when torch sees a GPU, else the CPU.

    Raises:
        ParamError: ``cuda`` was asked for and there is no usable GPU.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ParamError("device 'cuda' was asked for but torch sees no CUDA GPU: use cpu or auto")
    return device


def load_segmenter_for(params: NodeParams, *, allow_untrained: bool = False) -> Segmenter:
    """The segmenter for ``params``; with ``allow_untrained`` and no model anywhere, random
    ``tiny`` weights (loudly logged) instead of an error."""
    if params.model_path and is_export_folder(params.model_path):
        segmenter = load_segmenter(
            params.model_path,
            backend=params.backend,
            precision=params.precision,
            score_threshold=params.score_threshold,
            max_instances=params.max_instances,
        )
        check_input_size(params, segmenter)
        return segmenter
    device = resolve_device(params.device)
    reference = load_segmenter(params.model_path or None, allow_untrained=allow_untrained)
    check_input_size(params, reference)
    frame = params.frame_hw
    engine = create_engine(
        params.backend,
        reference.model,
        reference.card,
        precision=params.precision,
        device=device,
        input_hw=reference.transform_for(*frame).input_hw if frame else None,
    )
    return Segmenter(
        reference.model,
        reference.card,
        engine=engine,
        device=device,
        score_threshold=params.score_threshold,
        max_instances=params.max_instances,
    )


def check_input_size(params: NodeParams, segmenter: Segmenter) -> None:
    """Raise ParamError unless ``input_size`` is 0 or the model's own input size."""
    if params.input_size not in (0, segmenter.image_size):
        raise ParamError(
            f"input_size {params.input_size} does not match the model, which was built for "
            f"{segmenter.image_size} px inputs; set input_size to 0 or {segmenter.image_size}"
        )
