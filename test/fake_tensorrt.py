"""A TensorRT stand-in that has exactly the names of one column of ``TENSORRT_API``.

It lets the real build and inspection code of :mod:`seem_ros.engine.tensorrt_engine` run on a
machine without a GPU, once per TensorRT major version: a name the code uses that is not in
that version's column is an ``AttributeError`` here, as it would be in that TensorRT. The
column itself is checked against the real bindings of each version by
``test_tensorrt_api.py``.

It models what matters for precision the way TensorRT does: a weakly typed network (10.x)
runs its floating-point layers in FP16 when ``BuilderFlag.FP16`` is set; a strongly typed
network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``) keeps the ONNX graph's own types.
The "plan" is JSON of the layers (one per ONNX node), and the engine inspector reports them in
TensorRT's JSON layout (``Inputs`` / ``Outputs`` with ``Format/Datatype``) only when the engine
was built with detailed profiling verbosity.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import TensorProto

_TYPE_NAMES = {
    TensorProto.FLOAT: "Float",
    TensorProto.FLOAT16: "Half",
    TensorProto.INT64: "Int64",
    TensorProto.INT32: "Int32",
    TensorProto.BOOL: "Bool",
}
_NUMPY = {"Float": np.float32, "Half": np.float16, "Int64": np.int64, "Int32": np.int32}


class _Base:
    """Objects made by the fake make their products through ``_new``, so that every object
    the code under test touches is of its version's restricted class."""

    _classes: ClassVar[dict[str, type]] = {}

    def _new(self, owner: str, *args: Any) -> Any:
        return self._classes[owner](*args)


class _Logger(_Base):
    WARNING = 2

    def __init__(self, severity: int = 2) -> None:
        self._severity = severity


class _NetworkDefinitionCreationFlag:
    STRONGLY_TYPED = 1


class _BuilderFlag:
    FP16 = 0


class _MemoryPoolType:
    WORKSPACE = 0


class _ProfilingVerbosity:
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class _LayerInformationFormat:
    ONELINE = 0
    JSON = 1


class _TensorIOMode:
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class _ITensor(_Base):
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self._name, self._shape = name, shape

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape


class _INetworkDefinition(_Base):
    def __init__(self, flags: int) -> None:
        self._flags = flags
        self._model: onnx.ModelProto | None = None
        self._inputs: list[_ITensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> _ITensor:
        return self._inputs[index]


class _OnnxParser(_Base):
    def __init__(self, network: _INetworkDefinition, logger: _Logger) -> None:
        self._network = network
        self._errors: list[str] = []

    def parse_from_file(self, path: str) -> bool:
        try:
            model = onnx.load(path)
        except Exception as error:  # TensorRT's parser reports, it does not raise
            self._errors.append(f"cannot read {path}: {error}")
            return False
        model = onnx.shape_inference.infer_shapes(model)
        self._network._model = model
        initializers = {i.name for i in model.graph.initializer}
        for tensor in model.graph.input:
            if tensor.name in initializers:
                continue
            dims = tuple(
                d.dim_value if d.HasField("dim_value") else -1
                for d in tensor.type.tensor_type.shape.dim
            )
            self._network._inputs.append(self._new("ITensor", tensor.name, dims))
        PARSED.append(Path(path))
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]


class _IOptimizationProfile(_Base):
    def __init__(self) -> None:
        self._shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
        if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
            raise ValueError(f"profile for {name} is not min <= opt <= max")
        self._shapes[name] = (tuple(low), tuple(opt), tuple(high))


class _IBuilderConfig(_Base):
    def __init__(self) -> None:
        self._flags: set[int] = set()
        self._verbosity = _ProfilingVerbosity.LAYER_NAMES_ONLY
        self._profiles: list[_IOptimizationProfile] = []
        self._pools: dict[int, int] = {}

    def set_memory_pool_limit(self, pool: int, size: int) -> None:
        self._pools[pool] = size

    def set_flag(self, flag: int) -> None:
        self._flags.add(flag)

    @property
    def profiling_verbosity(self) -> int:
        return self._verbosity

    @profiling_verbosity.setter
    def profiling_verbosity(self, value: int) -> None:
        self._verbosity = value

    def add_optimization_profile(self, profile: _IOptimizationProfile) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1


class _Builder(_Base):
    def __init__(self, logger: _Logger) -> None:
        self._logger = logger

    def create_network(self, flags: int) -> _INetworkDefinition:
        return self._new("INetworkDefinition", flags)

    def create_builder_config(self) -> _IBuilderConfig:
        return self._new("IBuilderConfig")

    def create_optimization_profile(self) -> _IOptimizationProfile:
        return self._new("IOptimizationProfile")

    def build_serialized_network(
        self, network: _INetworkDefinition, config: _IBuilderConfig
    ) -> bytes | None:
        model = network._model
        if model is None:
            return None
        strongly_typed = bool(network._flags & (1 << _NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        half = not strongly_typed and _BuilderFlag.FP16 in config._flags
        types_of = _tensor_types(model)

        def kind(name: str) -> str:
            elem = types_of.get(name, TensorProto.FLOAT)
            if half and elem == TensorProto.FLOAT:
                return "Half"
            return _TYPE_NAMES.get(elem, "Float")

        layers = [
            {
                "Name": node.name or f"{node.op_type}_{index}",
                "LayerType": node.op_type,
                "Inputs": [{"Name": n, "Format/Datatype": kind(n)} for n in node.input if n],
                "Outputs": [{"Name": n, "Format/Datatype": kind(n)} for n in node.output],
            }
            for index, node in enumerate(model.graph.node)
        ]
        io = [
            {"Name": t.name, "Mode": "input", "Type": _TYPE_NAMES[types_of[t.name]]}
            for t in network._inputs
        ] + [
            {"Name": t.name, "Mode": "output", "Type": _TYPE_NAMES[types_of[t.name]]}
            for t in model.graph.output
        ]
        shapes = {t.name: list(t.shape) for t in network._inputs}
        detailed = config._verbosity == _ProfilingVerbosity.DETAILED
        return json.dumps(
            {"layers": layers, "detailed": detailed, "io": io, "shapes": shapes}
        ).encode()


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    found = {t.name: t.type.tensor_type.elem_type for t in graph.value_info}
    found |= {t.name: t.type.tensor_type.elem_type for t in [*graph.input, *graph.output]}
    found |= {t.name: t.data_type for t in graph.initializer}
    return found


class _EngineInspector(_Base):
    def __init__(self, plan: dict[str, Any]) -> None:
        self._plan = plan

    def get_engine_information(self, fmt: int) -> str:
        if fmt != _LayerInformationFormat.JSON:
            raise ValueError("only JSON is modelled")
        layers = self._plan["layers"]
        if not self._plan["detailed"]:
            layers = [layer["Name"] for layer in layers]
        return json.dumps({"Layers": layers, "Bindings": [t["Name"] for t in self._plan["io"]]})


class _IExecutionContext(_Base):
    """Keeps shapes and addresses; running needs a GPU, so ``execute_async_v3`` refuses."""

    def __init__(self, engine: _ICudaEngine) -> None:
        self._engine = engine
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self._shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        self._addresses[name] = address
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._shapes.get(name, self._engine.get_tensor_shape(name))

    def execute_async_v3(self, stream: int) -> bool:
        raise RuntimeError("the TensorRT stand-in cannot run engines (no GPU)")


class _ICudaEngine(_Base):
    def __init__(self, plan: dict[str, Any]) -> None:
        self._plan = plan

    def create_engine_inspector(self) -> _EngineInspector:
        return self._new("EngineInspector", self._plan)

    def create_execution_context(self) -> _IExecutionContext:
        return self._new("IExecutionContext", self)

    @property
    def num_io_tensors(self) -> int:
        return len(self._plan["io"])

    def get_tensor_name(self, index: int) -> str:
        return self._plan["io"][index]["Name"]

    def _io(self, name: str) -> dict[str, Any]:
        return next(t for t in self._plan["io"] if t["Name"] == name)

    def get_tensor_mode(self, name: str) -> int:
        return _TensorIOMode.INPUT if self._io(name)["Mode"] == "input" else _TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        return self._io(name)["Type"]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._plan["shapes"].get(name, ()))


class _Runtime(_Base):
    def __init__(self, logger: _Logger) -> None:
        self._logger = logger

    def deserialize_cuda_engine(self, plan: bytes) -> _ICudaEngine | None:
        try:
            return self._new("ICudaEngine", json.loads(bytes(plan)))
        except ValueError:
            return None


def _nptype(dtype: str) -> type:
    return _NUMPY[dtype]


_IMPLEMENTATIONS: dict[str, Any] = {
    "Logger": _Logger,
    "Builder": _Builder,
    "OnnxParser": _OnnxParser,
    "INetworkDefinition": _INetworkDefinition,
    "ITensor": _ITensor,
    "IOptimizationProfile": _IOptimizationProfile,
    "IBuilderConfig": _IBuilderConfig,
    "Runtime": _Runtime,
    "ICudaEngine": _ICudaEngine,
    "IExecutionContext": _IExecutionContext,
    "EngineInspector": _EngineInspector,
    "NetworkDefinitionCreationFlag": _NetworkDefinitionCreationFlag,
    "BuilderFlag": _BuilderFlag,
    "MemoryPoolType": _MemoryPoolType,
    "ProfilingVerbosity": _ProfilingVerbosity,
    "LayerInformationFormat": _LayerInformationFormat,
    "TensorIOMode": _TensorIOMode,
    "nptype": _nptype,
}

PARSED: list[Path] = []
"""Every ONNX file the fake parser read, in order (tests look at what was built from)."""


def _restricted(implementation: type, members: set[str], classes: dict[str, type]) -> type:
    """A copy of ``implementation`` without the public members not in ``members``; private
    helpers (leading underscore) stay, as the real classes' internals are there but hidden."""
    namespace: dict[str, Any] = {}
    for klass in reversed(implementation.__mro__[:-1]):
        for key, value in vars(klass).items():
            if key.startswith("_") or key in members:
                namespace[key] = value
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["_classes"] = classes
    return type(implementation.__name__.lstrip("_"), (), namespace)


def fake_tensorrt(version: str, names: Iterable[str]) -> types.ModuleType:
    """A module named ``tensorrt`` of ``version`` that has exactly ``names``."""
    names = set(names)
    module = types.ModuleType("tensorrt")
    if "__version__" in names:
        module.__version__ = version  # type: ignore[attr-defined]
    classes: dict[str, type] = {}
    for owner, implementation in _IMPLEMENTATIONS.items():
        if not isinstance(implementation, type):
            if owner in names:
                setattr(module, owner, implementation)
            continue
        members = {n.split(".", 1)[1] for n in names if n.startswith(owner + ".")}
        classes[owner] = _restricted(implementation, members, classes)
        if owner in names or members:
            setattr(module, owner, classes[owner])
    return module
