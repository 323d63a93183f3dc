"""``backend: auto|tensorrt|onnxruntime|torch``: build the engine, say which and why.

``auto`` tries TensorRT, then ONNX Runtime (its TensorRT, CUDA or CPU execution provider), then
PyTorch, and logs the one it took together with the reason each faster one was skipped. Each
engine is warmed up (every graph built, loaded and run once) before it is taken, and *any*
exception while creating or warming one falls back to the next, with one warning line naming
the cause; a backend asked for by name raises :class:`EngineError` with the cause instead. The
ONNX graphs the first two need are exported on demand into a cache folder keyed by the model's
fingerprint, so a changed model is never served by stale graphs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..model.card import ModelCard
from ..model.seem import SEEM
from .base import Engine, EngineError
from .onnx_export import (
    DEFAULT_EXPORT_SLOTS,
    DEFAULT_GROUP_COUNTS,
    ExportError,
    ExportManifest,
    export_model,
    model_fingerprint,
)

if TYPE_CHECKING:
    from ..segmenter import Segmenter

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")
CACHE_ENV = "SEEM_ROS_CACHE"


def default_cache_dir() -> Path:
    """``$SEEM_ROS_CACHE``, else ``$XDG_CACHE_HOME/seem_ros``, else ``~/.cache/seem_ros``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seem_ros"


@dataclass(frozen=True)
class EngineRequest:
    """What :func:`create_engine` was asked for, passed to each backend's factory."""

    model: SEEM
    card: ModelCard
    precision: str
    cache_dir: Path
    export_dir: Path | None
    group_counts: tuple[int, ...]
    threads: int | None
    device: str
    input_hw: tuple[int, int] | None = None  # official models: the padded camera input

    @property
    def official(self) -> bool:
        return self.model.config.family == "official_v1"


def ensure_export(request: EngineRequest) -> ExportManifest:
    """The ONNX export of ``request.model``: reused when its fingerprint and group counts match,
    exported otherwise (into ``export_dir``, or the cache)."""
    fingerprint = model_fingerprint(request.model)
    folder = request.export_dir or request.cache_dir / "onnx" / fingerprint[:16]
    try:
        manifest = ExportManifest.load(folder)
    except ExportError as error:
        LOG.info("exporting ONNX graphs to %s (%s)", folder, error)
    else:
        config = request.model.config
        expected_slots = (
            None
            if config.family == "official_v1"
            else min(DEFAULT_EXPORT_SLOTS, config.decoder.max_visual_prompts)
        )
        if (
            manifest.model_sha256 == fingerprint
            and set(request.group_counts) <= set(manifest.decoders)
            and manifest.slots == expected_slots
            and (request.input_hw is None or manifest.input_hw == tuple(request.input_hw))
        ):
            return manifest
        LOG.info(
            "re-exporting %s: it was made from another model, group counts or slot count", folder
        )
    try:
        # engines need no text graph (text embeddings come from the PyTorch model and are cached)
        return export_model(
            request.model,
            request.card,
            folder,
            group_counts=request.group_counts,
            text_encoder=False,
            input_hw=request.input_hw,
        )
    except ExportError as error:
        raise EngineError(f"cannot export ONNX graphs: {error}") from error


def _torch(request: EngineRequest) -> Engine:
    from .torch_engine import TorchEngine

    return TorchEngine(request.model, device=request.device)


def _onnxruntime(request: EngineRequest) -> Engine:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise EngineError(f"onnxruntime is not installed ({error})") from error
    from .onnxruntime_engine import OnnxRuntimeEngine

    manifest = ensure_export(request)
    return OnnxRuntimeEngine(
        manifest,
        precision=request.precision,
        threads=request.threads,
        cache_dir=request.cache_dir / "onnxruntime" / manifest.model_sha256[:16],
    )


def _tensorrt(request: EngineRequest) -> Engine:
    from .tensorrt_engine import BuildOptions, TensorRTEngine, tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason:
        raise EngineError(reason)
    precision = "fp16" if request.precision == "auto" else request.precision
    manifest = ensure_export(request)
    return TensorRTEngine(
        manifest,
        cache_dir=request.cache_dir / "tensorrt" / manifest.model_sha256[:16],
        options=BuildOptions(precision=precision),
    )


def warm_up(engine: Engine) -> None:
    """Build, load and run every graph of ``engine`` once (engines that have graphs to build
    or sessions to open say so with a ``warm_up`` method), so that a backend that cannot run
    fails here, where it can fall back, and not on the first frame."""
    method = getattr(engine, "warm_up", None)
    if callable(method):
        method()


def _cause(error: BaseException) -> str:
    """One line: the exception's type and message (first line)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


FACTORIES: dict[str, Callable[[EngineRequest], Engine]] = {
    "tensorrt": _tensorrt,
    "onnxruntime": _onnxruntime,
    "torch": _torch,
}


def create_engine(
    backend: str,
    model: SEEM,
    card: ModelCard,
    *,
    precision: str = "auto",
    cache_dir: Path | None = None,
    export_dir: Path | None = None,
    group_counts: tuple[int, ...] = DEFAULT_GROUP_COUNTS,
    threads: int | None = None,
    device: str = "cpu",
    input_hw: tuple[int, int] | None = None,
) -> Engine:
    """An :class:`Engine` for ``model``.

    Args:
        backend: ``auto`` (fastest that works), ``tensorrt``, ``onnxruntime`` or ``torch``.
        precision: ``auto`` (FP16 where a GPU is present, FP32 on the CPU), ``fp32`` or
            ``fp16``; the engine's ``precision`` says what it actually runs.
        cache_dir: exported graphs and built engines (default :func:`default_cache_dir`).
        export_dir: use (or create) this ONNX export folder instead of the cache's.
        group_counts: prompt counts to export decoder graphs for (largest = most objects).
        threads: CPU threads for ONNX Runtime (default: physical cores).
        device: PyTorch device for the ``torch`` backend.
        input_hw: official models: the padded input of the camera's frames
            (``Segmenter.transform_for(h, w).input_hw``); exported graphs are made for it.
    Raises:
        EngineError: a named backend cannot run here or failed to start (the message says why),
            no backend works for ``auto``, or ``backend`` is not one of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    request = EngineRequest(
        model=model.eval(),
        card=card,
        precision=precision,
        cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
        export_dir=Path(export_dir) if export_dir else None,
        group_counts=tuple(group_counts),
        threads=threads,
        device=device,
        input_hw=tuple(input_hw) if input_hw else None,
    )
    candidates = AUTO_ORDER if backend == "auto" else (backend,)
    skipped: list[str] = []
    if backend == "auto" and request.official and input_hw is None and export_dir is None:
        # exported graphs have a fixed input; an official model's input follows the camera
        candidates = ("torch",)
        skipped.append(
            "tensorrt, onnxruntime: official models need graphs for the camera's frame size; "
            "make them with `seem-ros export --frame-size WxH` and pass the folder"
        )
    for position, name in enumerate(candidates):
        try:
            engine = FACTORIES[name](request)
            warm_up(engine)
        except EngineError as error:
            if backend != "auto":
                raise
            skipped.append(f"{name}: {error}")
            continue
        except Exception as error:  # any failure of a backend is a reason to try the next
            if backend != "auto":
                raise EngineError(f"backend {name} failed: {_cause(error)}") from error
            following = candidates[position + 1] if position + 1 < len(candidates) else None
            LOG.warning(
                "backend %s failed (%s); %s",
                name,
                _cause(error),
                f"falling back to {following}" if following else "no backend left to try",
            )
            LOG.debug("backend %s failure", name, exc_info=True)
            skipped.append(f"{name}: failed with {_cause(error)}")
            continue
        why = f"; skipped {' | '.join(skipped)}" if skipped else ""
        LOG.info("inference backend %s (asked for %s)%s", engine.describe(), backend, why)
        return engine
    raise EngineError("no inference backend works: " + " | ".join(skipped))


def load_segmenter_with_backend(
    model_path: str | Path | None = None,
    *,
    backend: str = "auto",
    allow_untrained: bool = False,
    precision: str = "auto",
    cache_dir: Path | None = None,
    export_dir: Path | None = None,
    group_counts: tuple[int, ...] = DEFAULT_GROUP_COUNTS,
    **segmenter_kwargs: object,
) -> Segmenter:
    """Like :func:`seem_ros.model_zoo.load_segmenter`, running on the chosen backend."""
    from ..model_zoo import load_segmenter
    from ..segmenter import Segmenter

    reference = load_segmenter(model_path, allow_untrained=allow_untrained)
    engine = create_engine(
        backend,
        reference.model,
        reference.card,
        precision=precision,
        cache_dir=cache_dir,
        export_dir=export_dir,
        group_counts=group_counts,
    )
    kwargs = segmenter_kwargs
    return Segmenter(reference.model, reference.card, engine=engine, **kwargs)  # type: ignore[arg-type]
