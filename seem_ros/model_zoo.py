"""Where the shipped demo model lives, and loading a Segmenter by path or default: a weights file
(PyTorch) or an export folder (``seem-ros export``; ONNX Runtime or TensorRT, no PyTorch)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .model.card import ModelCard
from .runtime.export_folder import is_export_folder
from .segmenter import Segmenter

LOG = logging.getLogger(__name__)
DEMO_MODEL_NAME = "seem_tiny_demo.safetensors"
MODEL_ENV = "SEEM_ROS_MODEL"


def model_search_paths() -> list[Path]:
    """Candidates for the demo model, first match wins: the source tree's ``models/``, an
    installed ament package's ``share/seem_ros/models``, and pip's data files
    (``<prefix>/share/seem_ros/models``). ``$SEEM_ROS_MODEL``, when set, comes before all of
    them and is never skipped (see :func:`default_model_path`)."""
    paths: list[Path] = []
    paths.append(Path(__file__).resolve().parent.parent / "models" / DEMO_MODEL_NAME)
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:  # a colcon workspace overlays /opt/ros/<distro>: every prefix counts
            paths.append(Path(prefix) / "share" / "seem_ros" / "models" / DEMO_MODEL_NAME)
    paths.append(Path(sys.prefix) / "share" / "seem_ros" / "models" / DEMO_MODEL_NAME)
    return paths


def default_model_path() -> Path | None:
    """``$SEEM_ROS_MODEL`` if set, else the first demo model found, else None.

    Raises:
        FileNotFoundError: ``$SEEM_ROS_MODEL`` names nothing (a typo must not quietly give
            another model).
    """
    named = os.environ.get(MODEL_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"${MODEL_ENV} is {named!r}, which does not exist; point it at a model's "
                f".safetensors file, or unset it to use the shipped demo model"
            )
        return path
    for path in model_search_paths():
        if path.is_file():
            return path
    return None


def describe(card: ModelCard) -> str:
    """What a model is, in the words a user needs (the log line of every load)."""
    if not card.trained:
        return "UNTRAINED random weights: masks are meaningless"
    if card.provenance.get("converted_by"):
        source = card.provenance.get("source_file", "?")
        digest = str(card.provenance.get("source_sha256", ""))[:12]
        return (
            f"official SEEM weights ({card.config.name}) converted from {source} "
            f"(sha256 {digest}...); their publisher's licence applies"
        )
    teacher = card.provenance.get("distilled_from")
    if isinstance(teacher, dict):
        digest = str(teacher.get("sha256", ""))[:12]
        return (
            f"a student distilled from {teacher.get('name', '?')} ({teacher.get('config', '?')}, "
            f"sha256 {digest}...) on unlabelled frames: it knows what its teacher knows, "
            "and no more"
        )
    data = str(card.provenance.get("data", ""))
    if data.startswith("seem_ros.data"):
        return (
            "trained only on seem_ros's procedural world of coloured shapes (as the demo "
            "model): for trying the pipeline, not for real photos"
        )
    return f"trained on {data}" if data else "trained"


def load_segmenter(
    model: str | Path | None = None,
    *,
    allow_untrained: bool = False,
    backend: str = "auto",
    precision: str = "auto",
    **kwargs: object,
) -> Segmenter:
    """Load ``model`` (a weights path or an export folder), else the demo model; with
    ``allow_untrained`` and no model anywhere, fall back to randomly initialised ``tiny``
    weights and say so loudly.

    ``backend`` and ``precision`` choose how an export folder runs (``auto``: TensorRT, then
    ONNX Runtime); weights run on PyTorch (see
    :func:`~seem_ros.engine.selection.load_segmenter_with_backend` for other backends).
    """
    path = Path(model) if model else default_model_path()
    if path is not None and is_export_folder(path):
        segmenter = Segmenter.from_export(path, backend=backend, precision=precision, **kwargs)
        LOG.info(
            "model export %s (%s) on %s: %s",
            path,
            segmenter.card.config.name,
            segmenter.engine.describe(),
            describe(segmenter.card),
        )
        return segmenter
    if path is not None:
        segmenter = Segmenter.from_pretrained(path, **kwargs)  # type: ignore[arg-type]
        LOG.info("model %s (%s): %s", path, segmenter.card.config.name, describe(segmenter.card))
        return segmenter
    if not allow_untrained:
        searched = ", ".join(str(p) for p in model_search_paths())
        raise FileNotFoundError(
            f"no model given and no demo model found (searched {searched}; "
            f"${MODEL_ENV} names another)"
        )
    LOG.warning(
        "NO TRAINED MODEL FOUND: using UNTRAINED random 'tiny' weights; results are meaningless"
    )
    return Segmenter.from_config("tiny", **kwargs)  # type: ignore[arg-type]
