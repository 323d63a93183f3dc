"""ONNX Runtime backend over the exported graphs: TensorRT EP, then CUDA EP, then CPU EP.

Precision: ``auto`` is FP16 only where a CUDA GPU is actually present (the driver reports a
device; GPU execution providers merely being installed is not enough), FP32 otherwise. With the
TensorRT EP, FP16 is its own flag on the FP32 graph; every other provider gets the graphs
converted to FP16 once (inputs and outputs stay FP32, GridSample stays FP32: ONNX Runtime has
only a float CUDA kernel for it) and cached. The reported precision is the one that runs: when
the TensorRT EP was asked to do FP16 but did not load (ONNX Runtime then silently runs the FP32
graph on the CUDA EP), the session is reopened on the FP16 graph. FP16 can be forced on the CPU
EP too; it is slower there and exists for checking FP16 numerics on machines without a GPU.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..model.prompt_tensors import PromptTensors
from .base import Engine, EngineError, Features
from .cuda_driver import cuda_device_count as driver_device_count
from .export_manifest import IMAGE_INPUT, ExportManifest
from .graph_io import (
    check_features,
    check_image,
    decoder_feed,
    decoder_graph,
    load_manifest,
    unpad_outputs,
    visual_only,
)

LOG = logging.getLogger(__name__)

TENSORRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
GPU_PROVIDERS = (TENSORRT_EP, CUDA_EP)
PRECISIONS = ("auto", "fp32", "fp16")


def physical_cores() -> int:
    """Physical CPU cores (hyper-threads share one core's FP units, so they add little here)."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
        if count:
            return int(count)
    except ImportError:
        pass
    cores: set[tuple[str, str]] = set()
    try:
        physical = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                physical = value.strip()
            elif key.strip() == "core id":
                core = value.strip()
                cores.add((physical, core))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


def provider_chain(
    available: Sequence[str], *, fp16: bool, cache_dir: Path | None, device_id: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """Providers with their options, best first; the CPU EP is always the last resort."""
    chain: list[tuple[str, dict[str, Any]]] = []
    if TENSORRT_EP in available:
        options: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": fp16}
        if cache_dir is not None:
            options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
        chain.append((TENSORRT_EP, options))
    if CUDA_EP in available:
        chain.append((CUDA_EP, {"device_id": device_id}))
    chain.append((CPU_EP, {}))
    return chain


def cuda_device_count() -> int:
    """CUDA devices the driver reports (0 without a driver or a GPU); asks the driver API
    directly, so it needs neither torch nor a GPU build of ONNX Runtime."""
    return driver_device_count()


def resolve_precision(precision: str, leading_provider: str, *, gpu_present: bool) -> str:
    """``auto`` -> FP16 when a GPU provider leads *and* a GPU is present, else FP32."""
    if precision not in PRECISIONS:
        raise EngineError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "fp16" if gpu_present and leading_provider in GPU_PROVIDERS else "fp32"
    return precision


def running_precision(
    *, fp16_graph_loaded: bool, active_providers: Sequence[str], tensorrt_fp16: bool
) -> str:
    """What a session computes in: FP16 when it runs an FP16 graph, or the FP32 graph on the
    TensorRT EP with its FP16 flag (``tensorrt_fp16``); anything else runs FP32."""
    if fp16_graph_loaded:
        return "fp16"
    on_tensorrt = bool(active_providers) and active_providers[0] == TENSORRT_EP
    return "fp16" if on_tensorrt and tensorrt_fp16 else "fp32"


ORT_FP32_OPS = ("GridSample",)
"""Ops kept FP32 in FP16 graphs: ONNX Runtime's CUDA EP has only a float GridSample kernel
(the decoders sample features with it); in FP16 the node would be moved to the CPU EP, with
copies to and from the GPU around it."""


def fp16_graph(source: Path, cache_dir: Path, *, keep_fp32: Sequence[str] = ORT_FP32_OPS) -> Path:
    """An FP16 copy of ``source`` with FP32 inputs/outputs and the ops ``keep_fp32`` (besides
    onnxruntime's default block list) left FP32 behind casts; converted once and cached, named
    by that op list so a changed list never reuses an old conversion."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    kept = sorted(set(keep_fp32))
    tag = hashlib.sha256(",".join(kept).encode()).hexdigest()[:8]
    target = Path(cache_dir) / f"{source.stem}.fp16-{tag}.onnx"
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # the converter logs (INFO) every initializer shared by FP32 and FP16 nodes with a dump of
    # its nodes, megabytes for an official encoder; its warnings still show
    converter_log = logging.getLogger("onnxruntime.transformers.float16")
    level = converter_log.level
    converter_log.setLevel(logging.WARNING)
    try:
        converted = convert_float_to_float16(
            onnx.load(str(source)),
            keep_io_types=True,
            op_block_list=[*DEFAULT_OP_BLOCK_LIST, *kept],
        )
    finally:
        converter_log.setLevel(level)
    LOG.info("%s: FP16 copy %s (kept FP32: %s)", source.name, target, ", ".join(kept) or "-")
    partial = target.with_suffix(".partial")
    onnx.save(converted, str(partial))
    partial.replace(target)
    return target


SINGLE_OBJECT_DECODER_THREADS = 1
_ONNX_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class OnnxRuntimeEngine(Engine):
    """Runs ``encoder.onnx`` and the ``decoder_g{G}.onnx`` graphs of an export folder.

    Args:
        manifest: the export (or its folder), see :func:`~seem_ros.engine.onnx_export.export_model`.
        precision: ``auto`` (FP16 on GPU providers with a GPU present, FP32 otherwise),
            ``fp32`` or ``fp16``. ``precision`` then says what runs.
        providers: restrict to these execution providers (default: all that are installed).
        threads: intra-op threads (default: the number of physical cores).
        cache_dir: where FP16 graphs and TensorRT EP engines go (default: the export folder).
    """

    name = "onnxruntime"

    def __init__(
        self,
        manifest: ExportManifest | Path,
        *,
        precision: str = "auto",
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise EngineError(f"onnxruntime is not installed: {error}") from error
        self._ort = ort
        self.manifest = load_manifest(manifest)
        installed = ort.get_available_providers()
        wanted = list(providers) if providers is not None else installed
        unknown = [p for p in wanted if p not in installed]
        if unknown:
            raise EngineError(f"execution providers {unknown} are not installed (have {installed})")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.manifest.folder
        self.gpu_count = cuda_device_count()
        if providers is None and not self.gpu_count:
            # installed GPU providers without a GPU would only fail over to the CPU EP
            wanted = [p for p in wanted if p not in GPU_PROVIDERS]
        leading = next((p for p in (*GPU_PROVIDERS, CPU_EP) if p in wanted), CPU_EP)
        self._auto = precision == "auto"
        self.precision = resolve_precision(precision, leading, gpu_present=self.gpu_count > 0)
        self.providers = provider_chain(
            wanted, fp16=self.precision == "fp16", cache_dir=self.cache_dir
        )
        self.threads = threads or physical_cores()
        # the TensorRT EP applies FP16 itself; every other provider needs an FP16 graph
        self._convert_to_fp16 = self.precision == "fp16" and self.providers[0][0] != TENSORRT_EP
        self.image_shape = self.manifest.image_shape
        self.loaded_graphs: dict[str, Path] = {}  # exported graph name -> the file running it
        self._encoder = self._session(self.manifest.path(self.manifest.encoder))
        self._decoders: dict[tuple[int, bool], Any] = {}

    @property
    def input_hw(self) -> tuple[int, int]:
        """The exported encoder's fixed (height, width)."""
        return (self.image_shape[2], self.image_shape[3])

    # ------------------------------------------------------------------ sessions

    def _session(self, path: Path, threads: int | None = None) -> Any:
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Encoder and decoder sessions run alternately; spinning worker threads of the idle one
        # would steal the cores of the busy one (measurements: docs/performance.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        session = self._open(path, options)
        active = session.get_providers()
        running = self._running(active)
        if self._auto and self.precision == "fp16" and active[0] == CPU_EP:
            # auto chose FP16 for a GPU, but the GPU providers did not load: FP32 on the CPU
            LOG.warning("GPU execution providers did not load for %s: FP32 on the CPU", path.name)
            self.precision, self._convert_to_fp16 = "fp32", False
            self.providers = [(CPU_EP, {})]
            session = self._open(path, options)
        elif running != self.precision and self.precision == "fp16":
            # the TensorRT EP was to apply FP16 but did not load: ONNX Runtime would run the
            # FP32 graph on the next provider, so that provider gets the FP16 graph instead
            LOG.warning(
                "the TensorRT execution provider did not load for %s (running on %s): "
                "using the FP16 graph there",
                path.name,
                active[0],
            )
            self._convert_to_fp16 = True
            self.providers = [(n, o) for n, o in self.providers if n != TENSORRT_EP]
            session = self._open(path, options)
        running = self._running(session.get_providers())
        if running != self.precision:
            raise EngineError(
                f"ONNX Runtime runs {path.name} in {running}, not the {self.precision} asked "
                f"for (providers {session.get_providers()})"
            )
        return session

    def _running(self, active: Sequence[str]) -> str:
        trt_options = dict(self.providers).get(TENSORRT_EP, {})
        return running_precision(
            fp16_graph_loaded=self._convert_to_fp16,
            active_providers=active,
            tensorrt_fp16=bool(trt_options.get("trt_fp16_enable")),
        )

    def _open(self, path: Path, options: Any) -> Any:
        graph = fp16_graph(path, self.cache_dir) if self._convert_to_fp16 else path
        try:
            session = self._ort.InferenceSession(
                str(graph),
                options,
                providers=[name for name, _ in self.providers],
                provider_options=[opts for _, opts in self.providers],
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise EngineError(f"ONNX Runtime cannot load {graph}: {error}") from error
        self.loaded_graphs[path.name] = graph
        return session

    def warm_up(self) -> None:
        """Open every decoder and run each graph once on zeros, so failures show before the
        first frame (``create_engine`` falls back on them)."""
        sessions = [self._encoder]
        for groups in self.manifest.group_counts:
            sessions.append(self._decoder(groups)[1])
            if self.manifest.visual_decoders:
                sessions.append(self._decoder(groups, visual=True)[1])
        for session in sessions:
            feed = {
                tensor.name: np.zeros(
                    [d if isinstance(d, int) and d > 0 else 1 for d in tensor.shape],
                    dtype=_ONNX_TO_NUMPY.get(tensor.type, np.float32),
                )
                for tensor in session.get_inputs()
            }
            session.run(None, feed)

    def _decoder(self, groups: int, visual: bool = False) -> tuple[int, Any]:
        graph_groups, path = decoder_graph(self.manifest, groups, visual_only=visual)
        if (graph_groups, visual) not in self._decoders:
            # A one-object decode is a chain of tiny ops: waking a second (non-spinning) worker
            # per op costs more than it saves; from about 10 objects on, threads pay off
            # (measurements: docs/performance.md).
            threads = SINGLE_OBJECT_DECODER_THREADS if graph_groups == 1 else None
            self._decoders[graph_groups, visual] = self._session(path, threads)
        return graph_groups, self._decoders[graph_groups, visual]

    @property
    def active_providers(self) -> list[str]:
        return list(self._encoder.get_providers())

    @property
    def max_slots(self) -> int | None:
        return self.manifest.slots

    def describe(self) -> str:
        providers = ", ".join(self.active_providers)
        return f"{self.name} ({self.precision}, {providers}, {self.threads} threads)"

    # ------------------------------------------------------------------ inference
    def encode(self, image: np.ndarray) -> Features:
        check_image(image, self.image_shape)
        feed = {IMAGE_INPUT: np.ascontiguousarray(image, dtype=np.float32)}
        return tuple(self._encoder.run(list(self.manifest.feature_names), feed))

    def decode(
        self, features: Features, prompts: PromptTensors[np.ndarray]
    ) -> dict[str, np.ndarray]:
        check_features(features, self.manifest.feature_names)
        groups = prompts.num_groups
        visual = visual_only(prompts) and bool(self.manifest.visual_decoders)
        graph_groups, session = self._decoder(groups, visual)
        features = tuple(np.asarray(f, dtype=np.float32) for f in features)
        # a graph drops inputs its computation does not read (the official decoder reads only
        # the sizes of the pixel-decoder maps), so feed just the ones it declares
        wanted = {tensor.name for tensor in session.get_inputs()}
        feed = {
            name: np.ascontiguousarray(value)
            for name, value in decoder_feed(
                features, prompts, graph_groups, self.manifest, visual_only=visual
            ).items()
            if name in wanted
        }
        names = [tensor.name for tensor in session.get_outputs()]
        values = session.run(names, feed)
        return unpad_outputs(dict(zip(names, values)), groups)
