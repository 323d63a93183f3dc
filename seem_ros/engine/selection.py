"""``backend: auto|tensorrt|onnxruntime|torch``: build the engine, say which and why.

``auto`` tries TensorRT, then ONNX Runtime (its TensorRT, CUDA or CPU execution provider), then
PyTorch, and logs the one it took together with the reason each faster one was skipped. Each
engine is warmed up (every graph built, loaded and run once) before it is taken, and *any*
exception while creating or warming one falls back to the next, with one warning line naming
the cause; a backend asked for by name raises :class:`EngineError` with the cause instead. The
ONNX graphs the first two need are exported on demand into a cache folder keyed by the model's
fingerprint, so a changed model is never served by stale graphs.

:func:`create_export_engine` does the same for an export folder alone (``auto``: TensorRT,
then ONNX Runtime), without PyTorch: this module imports torch only where a PyTorch model is
exported or run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..model.card import ModelCard
from .base import Engine, EngineError
from .export_manifest import DEFAULT_EXPORT_SLOTS, DEFAULT_GROUP_COUNTS, ExportError, ExportManifest

if TYPE_CHECKING:
    from ..model.build import AnySEEM
    from ..segmenter import Segmenter

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")
EXPORT_BACKENDS = ("auto", "tensorrt", "onnxruntime")
"""What runs an export folder without the model's weights (and without PyTorch)."""
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

    model: AnySEEM
    card: ModelCard
    precision: str
    cache_dir: Path
    export_dir: Path | None
    group_counts: tuple[int, ...]
    threads: int | None
    device: str
    input_hw: tuple[int, int] | None = None  # the camera frame's padded input (None: square)

    @property
    def official(self) -> bool:
        return self.model.config.family == "official_v1"


def ensure_export(request: EngineRequest) -> ExportManifest:
    """The ONNX export of ``request.model``: reused when its fingerprint and group counts match,
    exported otherwise (into ``export_dir``, or the cache)."""
    from .onnx_export import export_model, model_fingerprint

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
    _require_onnxruntime()
    return onnxruntime_engine(
        ensure_export(request),
        precision=request.precision,
        threads=request.threads,
        cache_dir=request.cache_dir,
    )


def _tensorrt(request: EngineRequest) -> Engine:
    _require_tensorrt()
    return tensorrt_engine(
        ensure_export(request), precision=request.precision, cache_dir=request.cache_dir
    )


def _require_onnxruntime() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise EngineError(f"onnxruntime is not installed ({error})") from error


def _require_tensorrt() -> None:
    from .tensorrt_engine import tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason:
        raise EngineError(reason)


def onnxruntime_engine(
    manifest: ExportManifest, *, precision: str, threads: int | None, cache_dir: Path
) -> Engine:
    """ONNX Runtime on ``manifest``'s graphs, FP16 copies cached under ``cache_dir``."""
    from .onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(
        manifest,
        precision=precision,
        threads=threads,
        cache_dir=cache_dir / "onnxruntime" / manifest.model_sha256[:16],
    )


def tensorrt_engine(manifest: ExportManifest, *, precision: str, cache_dir: Path) -> Engine:
    """TensorRT engines of ``manifest``'s graphs (``auto`` precision: FP16), cached under
    ``cache_dir`` where ``seem-ros build-engine`` with default options puts them."""
    from .tensorrt_engine import BuildOptions, TensorRTEngine

    return TensorRTEngine(
        manifest,
        cache_dir=cache_dir / "tensorrt" / manifest.model_sha256[:16],
        options=BuildOptions(precision="fp16" if precision == "auto" else precision),
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
    model: AnySEEM,
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
        input_hw: the padded input of the camera's frames
            (``Segmenter.transform_for(h, w).input_hw``); exported graphs are made for it.
            Without it they take a square frame's input: our models letterbox other frames
            into it, official models need it (``auto`` runs them on PyTorch instead).
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
    return first_working(backend, candidates, lambda name: FACTORIES[name](request), skipped)


def first_working(
    backend: str,
    candidates: tuple[str, ...],
    build: Callable[[str], Engine],
    skipped: list[str],
) -> Engine:
    """The first of ``candidates`` that ``build`` creates and that warms up; logs the one taken
    and why the others were ``skipped`` (a list the caller may have started).

    Raises:
        EngineError: ``backend`` was named and fails (with the cause), or none works.
    """
    for position, name in enumerate(candidates):
        try:
            engine = build(name)
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


def create_export_engine(
    backend: str,
    manifest: ExportManifest,
    *,
    precision: str = "auto",
    cache_dir: Path | None = None,
    threads: int | None = None,
) -> Engine:
    """An :class:`Engine` for the graphs of an export folder, without the model (or torch).

    Args:
        backend: ``auto`` (TensorRT, then ONNX Runtime), ``tensorrt`` or ``onnxruntime``.
        precision, threads: as for :func:`create_engine`.
        cache_dir: built TensorRT engines and FP16 graphs (default :func:`default_cache_dir`).
    Raises:
        EngineError: as :func:`create_engine`; ``torch`` needs the weights, not an export.
    """
    if backend == "torch":
        raise EngineError(
            "backend torch runs a model's weights (.safetensors), not an export folder; "
            "use auto, tensorrt or onnxruntime"
        )
    if backend not in EXPORT_BACKENDS:
        raise EngineError(
            f"unknown backend {backend!r}; choose one of {', '.join(EXPORT_BACKENDS)}"
        )
    cache = Path(cache_dir) if cache_dir else default_cache_dir()

    def build(name: str) -> Engine:
        if name == "tensorrt":
            _require_tensorrt()
            return tensorrt_engine(manifest, precision=precision, cache_dir=cache)
        _require_onnxruntime()
        return onnxruntime_engine(manifest, precision=precision, threads=threads, cache_dir=cache)

    candidates = EXPORT_BACKENDS[1:] if backend == "auto" else (backend,)
    return first_working(backend, candidates, build, [])


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
