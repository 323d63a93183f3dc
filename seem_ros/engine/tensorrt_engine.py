"""TensorRT backend (TensorRT 10 Python API): engines built from the exported ONNX graphs.

FP16 by default (FP32 and INT8 on request; INT8 takes calibration batches through a hook and
applies to the encoder, the decoder stays FP16). Engines are cached by
:class:`~seem_ros.engine.engine_cache.EngineCache`, keyed by the ONNX graph's sha256, the GPU,
the TensorRT version, the precision and the build options; anything else is rebuilt. Device
memory and the CUDA stream come from PyTorch, so no pycuda / cuda-python is needed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model.build import file_sha256
from ..model.prompt_tensors import PromptTensors
from .base import Engine, EngineError, Features
from .engine_cache import EngineCache, EngineKey
from .graph_io import check_features, check_image, decoder_feed, decoder_graph, load_manifest
from .onnx_export import IMAGE_INPUT, ExportManifest, unpad_outputs

LOG = logging.getLogger(__name__)

TRT_PRECISIONS = ("fp16", "fp32", "int8")
MIN_TENSORRT_MAJOR = 10

CalibrationBatches = Callable[[], Iterable[dict[str, np.ndarray]]]
"""INT8 hook: returns an iterable of input batches ({input name: float32 array}) for a graph."""


def tensorrt_unavailable_reason() -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    try:
        import tensorrt as trt
    except ImportError as error:
        return f"the tensorrt package is not installed ({error})"
    major = int(trt.__version__.split(".")[0])
    if major < MIN_TENSORRT_MAJOR:
        return f"TensorRT {trt.__version__} found, {MIN_TENSORRT_MAJOR}.x or newer is needed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to PyTorch (TensorRT needs one)"
    return None


@dataclass(frozen=True)
class BuildOptions:
    """How engines are built.

    Args:
        precision: ``fp16`` (default), ``fp32`` or ``int8`` (encoder INT8 + FP16 fallback).
        workspace_mb: builder scratch memory limit.
        max_batch, opt_batch: the encoder's optimisation profile over its batch axis
            (min 1, opt ``opt_batch``, max ``max_batch``); decoder graphs have static shapes.
    """

    precision: str = "fp16"
    workspace_mb: int = 2048
    max_batch: int = 1
    opt_batch: int = 1

    def __post_init__(self) -> None:
        if self.precision not in TRT_PRECISIONS:
            raise EngineError(
                f"TensorRT precision must be one of {TRT_PRECISIONS}, got {self.precision!r}"
            )
        if self.workspace_mb < 16:
            raise EngineError(f"workspace of {self.workspace_mb} MiB is too small (need >= 16)")
        if not 1 <= self.opt_batch <= self.max_batch:
            raise EngineError(
                f"need 1 <= opt_batch <= max_batch, got {self.opt_batch}, {self.max_batch}"
            )

    def signature(self) -> str:
        """Canonical text of the options that change the built engine (part of its cache key)."""
        values = asdict(self)
        values.pop("precision")
        return json.dumps(values, sort_keys=True)


def gpu_identity() -> str:
    """The current GPU's name and compute capability, e.g. ``NVIDIA H100 80GB HBM3 (sm_90)``."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()} (sm_{major}{minor})"


def engine_key(
    onnx_path: Path, options: BuildOptions, *, gpu: str, tensorrt_version: str
) -> EngineKey:
    return EngineKey(
        onnx_sha256=file_sha256(onnx_path),
        gpu=gpu,
        tensorrt_version=tensorrt_version,
        precision=options.precision,
        build_options=options.signature(),
    )


# ----------------------------------------------------------------------------- building
def _int8_calibrator(trt: Any, batches: CalibrationBatches, cache_file: Path) -> Any:
    """An entropy calibrator feeding ``batches`` (copied to the GPU one at a time)."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches())
            self._held: list[torch.Tensor] = []
            self._batch_size = 1

        def get_batch_size(self) -> int:
            return self._batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            missing = [n for n in names if n not in batch]
            if missing:
                raise EngineError(f"calibration batch lacks inputs {missing}")
            self._held = [
                torch.from_numpy(np.ascontiguousarray(batch[n], np.float32)).cuda() for n in names
            ]
            self._batch_size = int(self._held[0].shape[0])
            return [int(t.data_ptr()) for t in self._held]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.write_bytes(bytes(cache))

    return EntropyCalibrator()


def build_serialized_engine(
    onnx_path: Path,
    options: BuildOptions,
    *,
    calibration: CalibrationBatches | None = None,
    calibration_cache: Path | None = None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine (raises :class:`EngineError`)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if options.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tuple(tensor.shape)
        if shape and shape[0] == -1:
            rest = shape[1:]
            profile.set_shape(
                tensor.name, (1, *rest), (options.opt_batch, *rest), (options.max_batch, *rest)
            )
    config.add_optimization_profile(profile)
    if options.precision == "int8":
        if calibration is None:
            raise EngineError("INT8 needs calibration batches (see --int8-images)")
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_calibration_profile(profile)
        cache = calibration_cache or onnx_path.with_suffix(".int8.calib")
        config.int8_calibrator = _int8_calibrator(trt, calibration, cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(
            f"TensorRT failed to build an engine from {onnx_path} (see its log above)"
        )
    return bytes(serialized)


# ----------------------------------------------------------------------------- running
class TensorRTGraph:
    """One deserialized engine with its execution context; numpy in, numpy out."""

    def __init__(self, plan: bytes, name: str) -> None:
        import tensorrt as trt
        import torch

        self._trt, self._torch, self.name = trt, torch, name
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise EngineError(f"TensorRT could not deserialize the {name} engine")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self.inputs = [
            n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        ]
        self.outputs = [n for n in names if n not in self.inputs]

    def _torch_dtype(self, tensor_name: str) -> Any:
        numpy_type = self._trt.nptype(self._engine.get_tensor_dtype(tensor_name))
        return self._torch.from_numpy(np.zeros(0, dtype=numpy_type)).dtype

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        held = []
        with torch.cuda.stream(self._stream):
            for name in self.inputs:
                if name not in feed:
                    raise EngineError(f"{self.name} engine needs input {name!r}")
                tensor = torch.from_numpy(np.ascontiguousarray(feed[name])).to(
                    device="cuda", dtype=self._torch_dtype(name), non_blocking=True
                )
                self._context.set_input_shape(name, tuple(tensor.shape))
                self._context.set_tensor_address(name, int(tensor.data_ptr()))
                held.append(tensor)
            results = {}
            for name in self.outputs:
                shape = tuple(self._context.get_tensor_shape(name))
                results[name] = torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
                self._context.set_tensor_address(name, int(results[name].data_ptr()))
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise EngineError(f"TensorRT failed to run the {self.name} engine")
        self._stream.synchronize()
        return {name: value.float().cpu().numpy() for name, value in results.items()}


class TensorRTEngine(Engine):
    """Encoder + decoder engines for an export, built on first use and cached.

    Args:
        manifest: the export (or its folder).
        cache_dir: engine cache folder (default: ``<export>/tensorrt``).
        options: precision, workspace and optimisation-profile settings.
        calibration: INT8 hook, batches of ``{"image": (B, 3, S, S) float32 0..255}``.
    """

    name = "tensorrt"

    def __init__(
        self,
        manifest: ExportManifest | Path,
        *,
        cache_dir: Path | None = None,
        options: BuildOptions | None = None,
        calibration: CalibrationBatches | None = None,
    ) -> None:
        reason = tensorrt_unavailable_reason()
        if reason:
            raise EngineError(reason)
        import tensorrt as trt

        self.manifest = load_manifest(manifest)
        self.options = options or BuildOptions()
        self.precision = self.options.precision
        self.cache = EngineCache(
            Path(cache_dir) if cache_dir else self.manifest.folder / "tensorrt"
        )
        self._gpu, self._version = gpu_identity(), trt.__version__
        self._calibration = calibration
        self.image_shape = self.manifest.image_shape
        self._encoder = self._load(self.manifest.encoder, self.options, calibration)
        self._decoders: dict[int, TensorRTGraph] = {}

    def _load(
        self, graph_file: str, options: BuildOptions, calibration: CalibrationBatches | None
    ) -> TensorRTGraph:
        onnx_path = self.manifest.path(graph_file)
        graph = Path(graph_file).stem
        key = engine_key(onnx_path, options, gpu=self._gpu, tensorrt_version=self._version)
        found = self.cache.lookup(graph, key)
        if found.plan is not None:
            LOG.info("TensorRT %s: using cached engine %s", graph, found.plan)
            return TensorRTGraph(found.plan.read_bytes(), graph)
        LOG.info("TensorRT %s: building (%s)", graph, found.reason)
        plan = build_serialized_engine(onnx_path, options, calibration=calibration)
        self.cache.store(graph, key, plan)
        return TensorRTGraph(plan, graph)

    def build_all(self) -> list[Path]:
        """Build (or validate) every graph's engine now; returns the cached plan files."""
        for groups in self.manifest.group_counts:
            self._decoder(groups)
        names = [self.manifest.encoder, *self.manifest.decoders.values()]
        return [self.cache.plan_path(Path(name).stem) for name in names]

    def _decoder(self, groups: int) -> tuple[int, TensorRTGraph]:
        graph_groups, path = decoder_graph(self.manifest, groups)
        if graph_groups not in self._decoders:
            # INT8 calibration data exists for images only: decoders stay FP16
            options = self.options
            if options.precision == "int8":
                options = BuildOptions(**{**asdict(options), "precision": "fp16"})
            self._decoders[graph_groups] = self._load(path.name, options, None)
        return graph_groups, self._decoders[graph_groups]

    @property
    def max_slots(self) -> int | None:
        return self.manifest.slots

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self._gpu}, TensorRT {self._version})"

    def encode(self, image: np.ndarray) -> Features:
        check_image(image, self.image_shape)
        outputs = self._encoder.run({IMAGE_INPUT: np.asarray(image, dtype=np.float32)})
        return tuple(outputs[name] for name in self.manifest.feature_names)

    def decode(
        self, features: Features, prompts: PromptTensors[np.ndarray]
    ) -> dict[str, np.ndarray]:
        check_features(features, self.manifest.feature_names)
        groups = prompts.num_groups
        graph_groups, graph = self._decoder(groups)
        feed = decoder_feed(features, prompts, graph_groups, self.manifest)
        return unpad_outputs(graph.run(feed), groups)
