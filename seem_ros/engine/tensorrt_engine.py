"""TensorRT backend: engines built from the exported ONNX graphs, on TensorRT 10.x and 11.x.

Jetson Orin on JetPack 6 ships TensorRT 10.3 and cannot take 11; PyPI serves 11.x. The two
build FP16 engines differently, so the builder branches on the major version:

* **10.x** (weakly typed): the FP32 graph with ``BuilderFlag.FP16``; TensorRT picks FP16 or FP32
  per layer.
* **11.x** (every network strongly typed; ``BuilderFlag.FP16``, the INT8 calibrators, per-layer
  precision and ``platform_has_fast_fp16`` are gone): an FP32 graph builds an FP32 engine, so
  FP16 is built from an FP16 copy of the graph (:func:`~seem_ros.engine.onnxruntime_engine.
  fp16_graph`, FP32 inputs and outputs kept, LayerNormalization kept FP32 against overflow).

Each branch uses only the names in its column of :data:`TENSORRT_API` (checked against the real
10.3 and 11.x bindings by ``test/test_tensorrt_api.py``). After every build and every load from
the cache, the engine's layers are read back with the engine inspector and the precision
actually built is logged; an engine asked for FP16 that has no FP16 layer is refused
(:class:`EngineError`, so ``backend: auto`` falls back), never reported as FP16.

INT8 is not offered: implicit INT8 (calibrators + ``BuilderFlag.INT8``) no longer exists in 11.x
and is deprecated in 10.x; INT8 now comes from Q/DQ nodes in the graph (explicit quantisation),
which our exporter does not produce. An FP16 build of a Q/DQ graph would run those layers in INT8
by itself, so INT8 belongs in the export step, not here.

Engines are cached by :class:`~seem_ros.engine.engine_cache.EngineCache`, keyed by the ONNX
graph's sha256, the GPU, the TensorRT version and major version, the precision and the build
options. Device memory and the CUDA stream come from the CUDA driver through ctypes
(:mod:`.cuda_driver`): no PyTorch, pycuda or cuda-python.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.prompt_tensors import PromptTensors
from ..model.weights import file_sha256
from .base import Engine, EngineError, Features
from .cuda_driver import CudaDriver, CudaError, DeviceBuffer, cuda_device_count
from .engine_cache import EngineCache, EngineKey
from .export_manifest import IMAGE_INPUT, ExportManifest
from .graph_io import (
    check_features,
    check_image,
    decoder_feed,
    decoder_graph,
    load_manifest,
    unpad_outputs,
)

LOG = logging.getLogger(__name__)

TRT_PRECISIONS = ("fp16", "fp32")
MIN_TENSORRT_MAJOR = 10
STRONGLY_TYPED_MAJOR = 11
"""From this major on, networks are strongly typed: FP16 engines need an FP16 graph."""

TENSORRT_FP32_OPS = ("LayerNormalization",)
"""Ops kept FP32 in the FP16 graphs built on 11.x: TensorRT warns that FP16 layer norms after
attention overflow (the 10.x builder keeps them FP32 by its own choice)."""

# ----------------------------------------------------------------------------- API table
# Every TensorRT name this module uses, per major version it branches for: "Name" (module
# level) or "Class.member". Derived from the TensorRT Python API (10.3 as on JetPack 6, 11.x as
# on PyPI) and checked against both versions' real bindings by test/test_tensorrt_api.py.
_COMMON_API = frozenset(
    {
        "__version__",
        "nptype",
        "Logger",
        "Logger.WARNING",
        "Builder",
        "Builder.create_network",
        "Builder.create_builder_config",
        "Builder.create_optimization_profile",
        "Builder.build_serialized_network",
        "OnnxParser",
        "OnnxParser.parse_from_file",
        "OnnxParser.num_errors",
        "OnnxParser.get_error",
        "INetworkDefinition.num_inputs",
        "INetworkDefinition.get_input",
        "ITensor.name",
        "ITensor.shape",
        "IOptimizationProfile.set_shape",
        "IBuilderConfig.set_memory_pool_limit",
        "IBuilderConfig.add_optimization_profile",
        "IBuilderConfig.profiling_verbosity",
        "MemoryPoolType.WORKSPACE",
        "ProfilingVerbosity.DETAILED",
        "Runtime",
        "Runtime.deserialize_cuda_engine",
        "ICudaEngine.create_execution_context",
        "ICudaEngine.create_engine_inspector",
        "ICudaEngine.num_io_tensors",
        "ICudaEngine.get_tensor_name",
        "ICudaEngine.get_tensor_mode",
        "ICudaEngine.get_tensor_dtype",
        "ICudaEngine.get_tensor_shape",
        "EngineInspector.get_engine_information",
        "LayerInformationFormat.JSON",
        "TensorIOMode.INPUT",
        "IExecutionContext.set_input_shape",
        "IExecutionContext.set_tensor_address",
        "IExecutionContext.get_tensor_shape",
        "IExecutionContext.execute_async_v3",
    }
)
TENSORRT_API: dict[int, frozenset[str]] = {
    # 10.x: weakly typed networks, FP16 by builder flag
    10: _COMMON_API | {"IBuilderConfig.set_flag", "BuilderFlag.FP16"},
    # 11.x: strongly typed networks, FP16 from the graph's own types
    11: _COMMON_API | {"NetworkDefinitionCreationFlag.STRONGLY_TYPED"},
}


def api_branch(major: int) -> int:
    """The :data:`TENSORRT_API` column a TensorRT major version runs (newer majors: the
    newest column, checked by :func:`missing_api` before use)."""
    return 10 if major < STRONGLY_TYPED_MAJOR else max(TENSORRT_API)


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def missing_api(trt: Any) -> list[str]:
    """Names of this module's branch for ``trt`` that ``trt`` does not have."""
    missing = []
    for name in sorted(TENSORRT_API[api_branch(tensorrt_major(trt))]):
        owner: Any = trt
        for part in name.split("."):
            if not hasattr(owner, part):
                missing.append(name)
                break
            owner = getattr(owner, part)
    return missing


def _import_tensorrt() -> Any:
    import tensorrt

    return tensorrt


def tensorrt_unavailable_reason() -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    try:
        trt = _import_tensorrt()
    except ImportError as error:
        return f"the tensorrt package is not installed or does not load ({error})"
    try:
        major = tensorrt_major(trt)
    except (AttributeError, ValueError) as error:
        return f"the tensorrt package has no usable __version__ ({error})"
    if major < MIN_TENSORRT_MAJOR:
        return f"TensorRT {trt.__version__} found, {MIN_TENSORRT_MAJOR}.x or newer is needed"
    missing = missing_api(trt)
    if missing:
        return f"TensorRT {trt.__version__} lacks {', '.join(missing)}"
    if cuda_device_count() == 0:
        return "the CUDA driver reports no GPU (TensorRT needs one)"
    return None


_DRIVER: CudaDriver | None = None


def cuda() -> CudaDriver:
    """The CUDA driver on device 0, current on the calling thread (shared by every engine).

    Raises:
        EngineError: no driver or no device.
    """
    global _DRIVER
    try:
        if _DRIVER is None:
            _DRIVER = CudaDriver(0)
        else:
            _DRIVER.make_current()
    except CudaError as error:
        raise EngineError(str(error)) from error
    return _DRIVER


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class BuildOptions:
    """How engines are built.

    Args:
        precision: ``fp16`` (default) or ``fp32``.
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
                f"TensorRT precision must be one of {TRT_PRECISIONS}, got {self.precision!r} "
                "(INT8 needs Q/DQ nodes in the graph, which the exporter does not make)"
            )
        if self.workspace_mb < 16:
            raise EngineError(f"workspace of {self.workspace_mb} MiB is too small (need >= 16)")
        if not 1 <= self.opt_batch <= self.max_batch:
            raise EngineError(
                f"need 1 <= opt_batch <= max_batch, got {self.opt_batch}, {self.max_batch}"
            )

    def signature(self, major: int) -> str:
        """Canonical text of the options that change the built engine (part of its cache key),
        including how FP16 is obtained on TensorRT ``major``."""
        values: dict[str, Any] = asdict(self)
        values.pop("precision")
        if self.precision == "fp16":
            values["fp16_from"] = (
                "builder flag"
                if api_branch(major) == 10
                else "fp16 graph keeping " + ",".join(TENSORRT_FP32_OPS)
            )
        return json.dumps(values, sort_keys=True)


def gpu_identity() -> str:
    """The current GPU's name and compute capability, e.g. ``NVIDIA H100 80GB HBM3 (sm_90)``."""
    return cuda().identity()


def engine_key(
    onnx_path: Path, options: BuildOptions, *, gpu: str, tensorrt_version: str
) -> EngineKey:
    major = int(tensorrt_version.split(".")[0])
    return EngineKey(
        onnx_sha256=file_sha256(onnx_path),
        gpu=gpu,
        tensorrt_version=tensorrt_version,
        tensorrt_major=str(major),
        precision=options.precision,
        build_options=options.signature(major),
    )


# ----------------------------------------------------------------------------- what was built
_DATATYPES = (  # (name, words in "Format/Datatype"), most specific first
    ("BF16", ("bf16", "bfloat")),
    ("FP16", ("fp16", "half")),
    ("FP8", ("fp8",)),
    ("FP4", ("fp4",)),
    ("UINT8", ("uint8",)),
    ("INT8", ("int8",)),
    ("INT4", ("int4",)),
    ("INT64", ("int64",)),
    ("INT32", ("int32",)),
    ("BOOL", ("bool",)),
    ("FP32", ("fp32", "float")),
)
_FORMAT_FIELD = re.compile(r'"Format/Datatype"\s*:\s*"([^"]*)"')


def datatype_of(format_text: str) -> str:
    """``"Row major linear FP16 format"``, ``"Half"``, ``"CHW4 | Int8"`` -> ``FP16``,
    ``FP16``, ``INT8``; ``OTHER`` when no known type is named."""
    text = format_text.lower()
    for name, words in _DATATYPES:
        if any(word in text for word in words):
            return name
    return "OTHER"


@dataclass(frozen=True)
class BuiltPrecision:
    """The precisions a built engine computes in, read back from its layers.

    Args:
        layers: number of layers in the engine.
        tensors: datatype (``FP16``, ``FP32``, ``INT32``...) -> how many layer inputs and
            outputs have it (empty when the engine does not say, e.g. it was not built with
            detailed profiling verbosity).
    """

    layers: int
    tensors: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """``fp16`` when any layer reads or writes FP16, ``fp32`` when floating-point layers
        exist and none is FP16, ``unknown`` when the engine did not tell."""
        if self.tensors.get("FP16"):
            return "fp16"
        if self.tensors.get("FP32"):
            return "fp32"
        return "unknown"

    def summary(self) -> str:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(self.tensors.items()))
        return f"{self.layers} layers; layer tensors {counts or 'not reported'}"


def parse_engine_information(text: str) -> BuiltPrecision:
    """The engine inspector's JSON (``LayerInformationFormat.JSON``) -> :class:`BuiltPrecision`.

    Layers are dicts with ``Inputs`` / ``Outputs`` lists whose ``Format/Datatype`` names the
    type, or bare names when the engine was built without detailed verbosity. Some versions
    write metadata with unescaped quotes; then the types are counted from the raw text.
    """
    try:
        info = json.loads(text, strict=False)
        layers = info.get("Layers", []) if isinstance(info, dict) else []
    except ValueError:
        found = _FORMAT_FIELD.findall(text)
        return BuiltPrecision(
            layers=text.count('"LayerType"'), tensors=dict(Counter(map(datatype_of, found)))
        )
    counts: Counter[str] = Counter()
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        for tensor in [*layer.get("Inputs", []), *layer.get("Outputs", [])]:
            if isinstance(tensor, dict) and "Format/Datatype" in tensor:
                counts[datatype_of(str(tensor["Format/Datatype"]))] += 1
    return BuiltPrecision(layers=len(layers), tensors=dict(counts))


def inspect_engine(trt: Any, engine: Any) -> BuiltPrecision:
    """Read a deserialized engine's layer precisions with its engine inspector."""
    inspector = engine.create_engine_inspector()
    return parse_engine_information(
        str(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    )


def deserialize(trt: Any, plan: bytes, name: str) -> tuple[Any, Any]:
    """(engine, its runtime): keep the runtime alive as long as the engine."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineError(f"TensorRT could not deserialize the {name} engine")
    return engine, runtime


def plan_precision(plan: bytes, name: str = "engine") -> BuiltPrecision:
    """Deserialize ``plan`` and read its layer precisions."""
    trt = _import_tensorrt()
    engine, _runtime = deserialize(trt, plan, name)
    return inspect_engine(trt, engine)


def require_precision(requested: str, built: BuiltPrecision, name: str) -> str:
    """The precision to report for an engine asked to be ``requested`` and ``built`` as it is.

    Raises:
        EngineError: FP16 was asked for and the engine has no FP16 layer.
    """
    if requested == "fp16" and built.precision == "fp32":
        raise EngineError(
            f"the {name} engine was asked to be FP16 but TensorRT built it FP32 "
            f"({built.summary()}); not using it as FP16"
        )
    if built.precision == "unknown":
        LOG.warning("TensorRT %s: the engine does not report its layer precisions", name)
        return f"{requested} (unverified)"
    return built.precision


# ----------------------------------------------------------------------------- building
def build_serialized_engine(
    onnx_path: Path, options: BuildOptions, *, fp16_cache: Path | None = None
) -> bytes:
    """Parse ``onnx_path`` (FP32, as exported) and build a serialized engine.

    On 10.x FP16 is the builder flag; on 11.x the graph is converted to FP16 first (into
    ``fp16_cache``, default: beside the graph), since strongly typed networks keep the graph's
    types. Every build has detailed profiling verbosity, so the inspector can read the layers'
    precisions back.

    Raises:
        EngineError: the graph does not parse or the build fails.
    """
    trt = _import_tensorrt()
    branch = api_branch(tensorrt_major(trt))
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    graph = Path(onnx_path)
    if branch == 10:
        network = builder.create_network(0)  # explicit batch is the only mode since 10
    else:
        if options.precision == "fp16":
            from .onnxruntime_engine import fp16_graph

            graph = fp16_graph(graph, fp16_cache or graph.parent, keep_fp32=TENSORRT_FP32_OPS)
        flag = int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(1 << flag)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {graph}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if branch == 10 and options.precision == "fp16":
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
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build an engine from {graph} (see its log above)")
    return bytes(serialized)


# ----------------------------------------------------------------------------- running
class TensorRTGraph:
    """One deserialized engine with its execution context; numpy in, numpy out.

    ``built`` is what the engine's layers compute in, read with the engine inspector.
    """

    def __init__(self, plan: bytes, name: str) -> None:
        trt = _import_tensorrt()
        self._trt, self.name = trt, name
        self._engine, self._runtime = deserialize(trt, plan, name)
        self.built = inspect_engine(trt, self._engine)
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self.inputs = [
            n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        ]
        self.outputs = [n for n in names if n not in self.inputs]
        self._stream: int | None = None
        self._buffers: dict[str, DeviceBuffer] = {}

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Input name -> (shape with -1 for dynamic axes, numpy dtype)."""
        return {
            name: (
                tuple(self._engine.get_tensor_shape(name)),
                self._trt.nptype(self._engine.get_tensor_dtype(name)),
            )
            for name in self.inputs
        }

    def _numpy_dtype(self, tensor_name: str) -> Any:
        return np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(tensor_name)))

    def _buffer(self, driver: CudaDriver, name: str, nbytes: int) -> DeviceBuffer:
        """The device buffer of tensor ``name``, kept between runs and grown when needed."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            if buffer is not None:
                buffer.free()
            buffer = self._buffers[name] = driver.allocate(nbytes)
        return buffer

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        driver = cuda()
        if self._stream is None:
            self._stream = driver.create_stream()
        held = []  # host arrays the queued copies read, alive until the stream is done
        for name in self.inputs:
            if name not in feed:
                raise EngineError(f"{self.name} engine needs input {name!r}")
            array = np.ascontiguousarray(feed[name], dtype=self._numpy_dtype(name))
            buffer = self._buffer(driver, name, array.nbytes)
            driver.to_device(buffer, array, self._stream)
            self._context.set_input_shape(name, tuple(array.shape))
            self._context.set_tensor_address(name, buffer.address)
            held.append(array)
        results = {}
        for name in self.outputs:
            shape = tuple(self._context.get_tensor_shape(name))
            results[name] = np.empty(shape, dtype=self._numpy_dtype(name))
            buffer = self._buffer(driver, name, results[name].nbytes)
            self._context.set_tensor_address(name, buffer.address)
        if not self._context.execute_async_v3(self._stream):
            raise EngineError(f"TensorRT failed to run the {self.name} engine")
        for name, host in results.items():
            driver.to_host(host, self._buffers[name], self._stream)
        driver.synchronize(self._stream)
        del held
        return {name: value.astype(np.float32, copy=False) for name, value in results.items()}


class TensorRTEngine(Engine):
    """Encoder + decoder engines for an export, built on first use and cached.

    ``precision`` is what the engines were read back to compute in, not what was asked for.

    Args:
        manifest: the export (or its folder).
        cache_dir: engine cache folder (default: ``<export>/tensorrt``).
        options: precision, workspace and optimisation-profile settings.
    Raises:
        EngineError: TensorRT cannot run here, a graph does not build, or an engine asked to
            be FP16 was built without FP16 layers.
    """

    name = "tensorrt"

    def __init__(
        self,
        manifest: ExportManifest | Path,
        *,
        cache_dir: Path | None = None,
        options: BuildOptions | None = None,
    ) -> None:
        reason = tensorrt_unavailable_reason()
        if reason:
            raise EngineError(reason)
        trt = _import_tensorrt()
        self.manifest = load_manifest(manifest)
        self.options = options or BuildOptions()
        self.cache = EngineCache(
            Path(cache_dir) if cache_dir else self.manifest.folder / "tensorrt"
        )
        self._gpu, self._version = gpu_identity(), str(trt.__version__)
        self.image_shape = self.manifest.image_shape
        self._built: dict[str, str] = {}
        self._encoder = self._load(self.manifest.encoder)
        self._decoders: dict[int, TensorRTGraph] = {}

    @property
    def input_hw(self) -> tuple[int, int]:
        """The exported encoder's fixed (height, width)."""
        return (self.image_shape[2], self.image_shape[3])

    @property
    def precision(self) -> str:  # type: ignore[override]
        """``fp16`` when every engine loaded so far was read back as FP16, else what they are."""
        kinds = sorted(set(self._built.values()))
        return kinds[0] if len(kinds) == 1 else "mixed " + "/".join(kinds)

    def _load(self, graph_file: str) -> TensorRTGraph:
        onnx_path = self.manifest.path(graph_file)
        graph = Path(graph_file).stem
        key = engine_key(onnx_path, self.options, gpu=self._gpu, tensorrt_version=self._version)
        found = self.cache.lookup(graph, key)
        if found.plan is not None:
            loaded = TensorRTGraph(found.plan.read_bytes(), graph)
            how = f"cached engine {found.plan}"
        else:
            LOG.info("TensorRT %s: building (%s)", graph, found.reason)
            plan = build_serialized_engine(
                onnx_path, self.options, fp16_cache=self.cache.root / "fp16_graphs"
            )
            loaded = TensorRTGraph(plan, graph)
            self.cache.store(graph, key, plan, built=asdict(loaded.built))
            how = "built"
        self._built[graph] = require_precision(self.options.precision, loaded.built, graph)
        LOG.info(
            "TensorRT %s %s: asked %s, runs %s (%s; TensorRT %s)",
            graph,
            how,
            self.options.precision,
            self._built[graph],
            loaded.built.summary(),
            self._version,
        )
        return loaded

    def build_all(self) -> list[Path]:
        """Build (or validate) every graph's engine now; returns the cached plan files."""
        for groups in self.manifest.group_counts:
            self._decoder(groups)
        names = [self.manifest.encoder]
        names += [self.manifest.decoders[g] for g in self.manifest.group_counts]
        return [self.cache.plan_path(Path(name).stem) for name in names]

    def built_summaries(self) -> list[str]:
        """Per loaded engine (encoder first, then decoders by group count): the precision it
        runs and its layers' datatypes, as read back with the engine inspector."""
        graphs = [self._encoder, *(self._decoders[g] for g in sorted(self._decoders))]
        return [f"{self._built[g.name]} ({g.built.summary()})" for g in graphs]

    def warm_up(self) -> None:
        """Build every engine and run each once on zeros, so failures show before the first
        frame (``create_engine`` falls back on them)."""
        self.build_all()
        for graph in [self._encoder, *self._decoders.values()]:
            feed = {
                name: np.zeros(tuple(max(1, d) for d in shape), dtype=dtype)
                for name, (shape, dtype) in graph.input_specs().items()
            }
            graph.run(feed)

    def _decoder(self, groups: int) -> tuple[int, TensorRTGraph]:
        graph_groups, path = decoder_graph(self.manifest, groups)
        if graph_groups not in self._decoders:
            self._decoders[graph_groups] = self._load(path.name)
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
