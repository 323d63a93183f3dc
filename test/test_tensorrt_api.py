"""TensorRT 10.x and 11.x without a GPU: the names each branch uses, and what it builds.

* The real build and inspection code runs against a TensorRT stand-in (``fake_tensorrt.py``)
  that has exactly one version's column of ``TENSORRT_API``: a name outside it fails as it
  would in that TensorRT, and the stand-in models how each version types a network.
* Each column is checked against that version's real Python bindings, imported without a GPU:
  the bindings' native TensorRT libraries are replaced by empty stubs compiled here (the
  bindings only call them when a builder or runtime is created), so ``dir()`` of the real
  pybind11 module answers. The 11.x bindings come with the ``dev`` extra
  (``tensorrt_cu13_bindings``, 1 MB, no libraries); other versions' unpacked bindings wheels
  can be named in ``$SEEM_ROS_TENSORRT_BINDINGS`` (``:``-separated folders holding
  ``tensorrt_bindings/``), e.g. ``tensorrt_cu12_bindings==10.3.0`` for JetPack 6.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from fake_tensorrt import PARSED, fake_tensorrt
from onnx import TensorProto, helper

from seem_ros.engine import tensorrt_engine
from seem_ros.engine.base import EngineError
from seem_ros.engine.tensorrt_engine import (
    TENSORRT_API,
    TENSORRT_FP32_OPS,
    BuildOptions,
    BuiltPrecision,
    TensorRTGraph,
    build_serialized_engine,
    datatype_of,
    parse_engine_information,
    plan_precision,
    require_precision,
    tensorrt_unavailable_reason,
)

VERSIONS = {10: "10.3.0", 11: "11.4.0.106"}
BINDINGS_ENV = "SEEM_ROS_TENSORRT_BINDINGS"


# ----------------------------------------------------------------------------- a small graph
@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    """image (N, 3, 8, 8) -> Conv -> LayerNormalization -> GridSample at grid (N, 2, 2, 2):
    a dynamic batch axis, an op kept FP32 on 11.x and the op ONNX Runtime keeps FP32."""
    rng = np.random.default_rng(0)

    def constant(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        values = rng.standard_normal(shape).astype(np.float32)
        return helper.make_tensor(name, TensorProto.FLOAT, shape, values.ravel().tolist())

    nodes = [
        helper.make_node("Conv", ["image", "weight"], ["features"], pads=[1, 1, 1, 1]),
        helper.make_node("LayerNormalization", ["features", "scale", "bias"], ["normed"]),
        helper.make_node("GridSample", ["normed", "grid"], ["sampled"], align_corners=1),
    ]
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "small",
            [
                helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8]),
                helper.make_tensor_value_info("grid", TensorProto.FLOAT, ["N", 2, 2, 2]),
            ],
            [helper.make_tensor_value_info("sampled", TensorProto.FLOAT, ["N", 4, 2, 2])],
            [constant("weight", (4, 3, 3, 3)), constant("scale", (8,)), constant("bias", (8,))],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path_factory.mktemp("small-graph") / "small.onnx"
    onnx.save(model, str(path))
    return path


def _use(monkeypatch, major: int, names: frozenset[str] | None = None) -> None:
    """Make ``import tensorrt`` give the stand-in of TensorRT ``major``."""
    module = fake_tensorrt(VERSIONS[major], TENSORRT_API[major] if names is None else names)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    PARSED.clear()


# ----------------------------------------------------------------------------- each branch
@pytest.mark.parametrize("major", sorted(VERSIONS))
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_each_branch_builds_and_reads_back_with_only_its_versions_names(
    monkeypatch, graph, tmp_path, major, precision
):
    _use(monkeypatch, major)
    plan = build_serialized_engine(graph, BuildOptions(precision=precision), fp16_cache=tmp_path)
    built = plan_precision(plan, "small")
    assert built.precision == precision
    assert built.layers >= 3  # the FP16 graph adds casts


def test_tensorrt_10_builds_fp16_from_the_fp32_graph_with_the_builder_flag(
    monkeypatch, graph, tmp_path
):
    _use(monkeypatch, 10)
    plan = build_serialized_engine(graph, BuildOptions(precision="fp16"), fp16_cache=tmp_path)
    assert list(PARSED) == [graph]
    assert plan_precision(plan).tensors.get("FP32", 0) == 0  # the flag lets every layer be FP16


def test_tensorrt_11_builds_fp16_from_an_fp16_graph_keeping_layer_norm_fp32(
    monkeypatch, graph, tmp_path
):
    _use(monkeypatch, 11)
    plan = build_serialized_engine(graph, BuildOptions(precision="fp16"), fp16_cache=tmp_path)
    (parsed,) = PARSED
    assert parsed.parent == tmp_path and parsed != graph
    converted = onnx.load(str(parsed))
    conv = next(n for n in converted.graph.node if n.op_type == "Conv")
    weights = {i.name: i.data_type for i in converted.graph.initializer}
    assert weights[conv.input[1]] == TensorProto.FLOAT16
    norm = next(n for n in converted.graph.node if n.op_type == "LayerNormalization")
    assert weights[norm.input[1]] == TensorProto.FLOAT  # kept FP32 (TENSORRT_FP32_OPS)
    assert "LayerNormalization" in TENSORRT_FP32_OPS
    built = plan_precision(plan)
    assert built.tensors["FP16"] > 0 and built.tensors["FP32"] > 0


def test_an_fp32_engine_is_never_called_fp16(monkeypatch, graph, tmp_path):
    # what the report measured: a build that was meant to be FP16 but came out FP32
    _use(monkeypatch, 11)
    plan = build_serialized_engine(graph, BuildOptions(precision="fp32"), fp16_cache=tmp_path)
    with pytest.raises(EngineError, match="asked to be FP16 but TensorRT built it FP32"):
        require_precision("fp16", plan_precision(plan), "encoder")


def test_an_engine_that_does_not_report_its_layers_is_not_called_fp16(caplog):
    names_only = json.dumps({"Layers": ["conv", "norm"], "Bindings": ["image"]})
    built = parse_engine_information(names_only)
    with caplog.at_level(logging.WARNING):
        assert require_precision("fp16", built, "encoder") == "fp16 (unverified)"
    assert "does not report its layer precisions" in caplog.text


def test_tensorrt_graph_reads_its_inputs_outputs_and_precision(monkeypatch, graph, tmp_path):
    _use(monkeypatch, 10)
    plan = build_serialized_engine(graph, BuildOptions(precision="fp16"), fp16_cache=tmp_path)
    loaded = TensorRTGraph(plan, "small")
    assert loaded.inputs == ["image", "grid"] and loaded.outputs == ["sampled"]
    assert loaded.built.precision == "fp16"
    assert loaded.input_specs()["image"] == ((-1, 3, 8, 8), np.float32)


def test_a_tensorrt_lacking_a_name_of_its_branch_is_unavailable_and_says_which(monkeypatch):
    names = TENSORRT_API[11] - {"NetworkDefinitionCreationFlag.STRONGLY_TYPED"}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("12.0.0", names))
    reason = tensorrt_unavailable_reason()
    assert reason == "TensorRT 12.0.0 lacks NetworkDefinitionCreationFlag.STRONGLY_TYPED"


@pytest.mark.parametrize("major", sorted(VERSIONS))
def test_the_stand_in_has_every_name_of_its_column(major):
    # so that the runs above exercise the table itself, not a smaller fake
    assert tensorrt_engine.missing_api(fake_tensorrt(VERSIONS[major], TENSORRT_API[major])) == []


def test_removed_names_are_only_in_the_10_column():
    # removed in TensorRT 11 (the list); the 11 branch must never touch them
    removed = {"BuilderFlag.FP16", "IBuilderConfig.set_flag"}
    assert removed <= TENSORRT_API[10]
    assert not removed & TENSORRT_API[11]
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in TENSORRT_API[11]


# ----------------------------------------------------------------------------- inspector text
@pytest.mark.parametrize(
    ("text", "datatype"),
    [
        ("Half", "FP16"),
        ("Float", "FP32"),
        ("Row major linear FP16 format", "FP16"),
        ("Channel major FP16 format where channel % 8 == 0", "FP16"),
        ("Row major linear FP32", "FP32"),
        ("CHW4 | Int8", "INT8"),
        ("Int32", "INT32"),
        ("BFloat16", "BF16"),
        ("Row major linear BF16 format", "BF16"),
        ("Bool", "BOOL"),
        ("UInt8", "UINT8"),
    ],
)
def test_inspector_datatypes_are_read_in_short_and_verbose_forms(text, datatype):
    assert datatype_of(text) == datatype


def test_inspector_json_with_unescaped_metadata_is_still_counted():
    broken = (
        '{"Layers": [{"Name": "conv", "LayerType": "CaskConvolution", "Metadata": "{"a": 1}",'
        ' "Outputs": [{"Name": "x", "Format/Datatype": "Half"}]}]}'
    )
    built = parse_engine_information(broken)
    assert built == BuiltPrecision(layers=1, tensors={"FP16": 1})


# ----------------------------------------------------------------------------- real bindings
STUB_SYMBOLS = [
    "createInferBuilder_INTERNAL",
    "createInferRefitter_INTERNAL",
    "createInferRuntime_INTERNAL",
    "getPluginRegistry",
    "getBuilderPluginRegistry",
    "initLibNvInferPlugins",
    "createNvOnnxParser_INTERNAL",
    "createNvOnnxParserRefitter_INTERNAL",
    "getNvOnnxParserVersion",
]
PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    for library in sys.argv[2:]:
        ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
    sys.path.insert(0, sys.argv[1])
    import tensorrt_bindings as trt
    from seem_ros.engine.tensorrt_engine import api_branch, missing_api, tensorrt_major
    print(json.dumps({"version": trt.__version__, "branch": api_branch(tensorrt_major(trt)),
                      "missing": missing_api(trt)}))
    """
)


def _bindings_folders() -> list[Path]:
    folders = [Path(p) for p in os.environ.get(BINDINGS_ENV, "").split(os.pathsep) if p]
    spec = importlib.util.find_spec("tensorrt_bindings")
    if spec is not None and spec.submodule_search_locations:
        folders.append(Path(next(iter(spec.submodule_search_locations))).parent)
    return folders


def _probe_real_bindings(folder: Path, work: Path) -> dict:
    """Import the real bindings in ``folder`` over stub TensorRT libraries; what they lack."""
    extension = next((folder / "tensorrt_bindings").glob("tensorrt*.so"))
    needed = sorted(
        set(re.findall(rb"lib(?:nvinfer|nvonnxparser)[a-z_]*\.so\.\d+", extension.read_bytes()))
    )
    symbols = list(STUB_SYMBOLS)
    for _attempt in range(20):
        source = work / "stub.c"
        source.write_text("".join(f"void* {name}(void) {{ return 0; }}\n" for name in symbols))
        libraries = []
        for soname in (n.decode() for n in needed):
            target = work / soname
            subprocess.run(
                ["cc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", target, source],
                check=True,
            )
            libraries.append(str(target))
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(folder), *libraries],
            capture_output=True,
            text=True,
            timeout=120,
        )
        undefined = re.search(r"undefined symbol: (\w+)", result.stderr)
        if result.returncode == 0:
            return json.loads(result.stdout.strip().splitlines()[-1])
        if not undefined or undefined.group(1) in symbols:
            raise AssertionError(f"the bindings in {folder} did not import: {result.stderr}")
        symbols.append(undefined.group(1))
    raise AssertionError(f"the bindings in {folder} need too many stub symbols")


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the stub libraries")
def test_every_name_of_each_branch_exists_in_the_real_bindings_of_its_version(tmp_path):
    folders = _bindings_folders()
    if not folders:
        pytest.skip(
            "no TensorRT bindings installed: pip install -e '.[dev]' brings the 11.x ones "
            f"(other versions: unpack their bindings wheel and name it in ${BINDINGS_ENV})"
        )
    for index, folder in enumerate(folders):
        work = tmp_path / str(index)
        work.mkdir()
        found = _probe_real_bindings(folder, work)
        assert found["missing"] == [], f"TensorRT {found['version']} lacks {found['missing']}"
        assert found["branch"] == (10 if found["version"].startswith("10.") else 11)


def test_the_module_imports_tensorrt_only_through_one_place():
    source = Path(tensorrt_engine.__file__).read_text()
    assert source.count("import tensorrt") == 1  # _import_tensorrt, which the tests replace
