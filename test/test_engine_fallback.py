"""``backend: auto`` falls back on *any* failure of a backend, while creating or warming it,
with one warning line naming the cause; the node starts on ONNX Runtime when TensorRT fails.

Every failure here is real: a folder that cannot be created, a graph that loads but cannot
run, a TensorRT package whose native libraries are missing.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from random_weights import random_model

from seem_ros.engine.base import EngineError
from seem_ros.engine.onnx_export import export_model
from seem_ros.engine.selection import create_engine
from seem_ros.engine.tensorrt_engine import tensorrt_unavailable_reason
from seem_ros.model.card import ModelCard

SELECTION_LOG = "seem_ros.engine.selection"


@pytest.fixture(scope="module")
def model():
    return random_model("tiny", seed=5)


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == SELECTION_LOG and r.levelno == logging.WARNING
    ]


def test_auto_falls_back_past_a_backend_that_raises_something_other_than_engine_error(
    model, tmp_path, caplog
):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the export folder's parent should be")
    with caplog.at_level(logging.INFO, logger=SELECTION_LOG):
        engine = create_engine(
            "auto",
            model,
            ModelCard(config=model.config),
            export_dir=blocker / "export",
            cache_dir=tmp_path / "cache",
            group_counts=(1,),
        )
    assert engine.name == "torch"
    (warning,) = _warnings(caplog)
    assert warning.startswith("backend onnxruntime failed (NotADirectoryError: ")
    assert warning.endswith("; falling back to torch")
    assert "skipped" in caplog.text and "onnxruntime: failed with NotADirectoryError" in caplog.text


def test_a_named_backend_that_fails_raises_engine_error_naming_the_cause(model, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(EngineError, match=r"backend onnxruntime failed: NotADirectoryError"):
        create_engine(
            "onnxruntime",
            model,
            ModelCard(config=model.config),
            export_dir=blocker / "export",
            cache_dir=tmp_path / "cache",
            group_counts=(1,),
        )


def _graph_that_loads_but_cannot_run(path: Path) -> None:
    """x (n,) -> Reshape to (2, 3): valid, and fails on its first run with n = 1."""
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Reshape", ["x", "shape"], ["y"])],
            "broken_on_run",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
            [helper.make_tensor("shape", TensorProto.INT64, [2], [2, 3])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    onnx.save(model, str(path))


def test_a_backend_failing_on_its_warm_up_run_falls_back(model, tmp_path, caplog):
    card = ModelCard(config=model.config)
    manifest = export_model(model, card, tmp_path / "export", group_counts=(1,))
    _graph_that_loads_but_cannot_run(manifest.path(manifest.encoder))
    with caplog.at_level(logging.INFO, logger=SELECTION_LOG):
        engine = create_engine(
            "auto",
            model,
            card,
            export_dir=tmp_path / "export",
            cache_dir=tmp_path / "cache",
            group_counts=(1,),
        )
    assert engine.name == "torch"
    (warning,) = _warnings(caplog)
    assert warning.startswith("backend onnxruntime failed (")
    assert "Reshape" in warning or "reshape" in warning


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt_bindings") is None,
    reason="needs TensorRT's Python bindings (the dev extra installs them, without libraries)",
)
def test_the_node_starts_on_onnxruntime_when_tensorrt_cannot_load_its_libraries(
    tmp_path, monkeypatch, caplog
):
    from seem_ros.ros.params import NodeParams
    from seem_ros.ros.pipeline import load_segmenter_for

    # the `tensorrt` package as NVIDIA's wheel lays it out, over the real bindings, whose
    # native libraries (libnvinfer, libnvonnxparser) are not installed here
    package = tmp_path / "site" / "tensorrt"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from tensorrt_bindings import *\nfrom tensorrt_bindings import __version__\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    monkeypatch.setenv("SEEM_ROS_CACHE", str(tmp_path / "cache"))
    reason = tensorrt_unavailable_reason()
    assert reason is not None and ".so" in reason  # the missing library, by name
    with caplog.at_level(logging.INFO, logger=SELECTION_LOG):
        segmenter = load_segmenter_for(NodeParams(device="cpu"))
    assert segmenter.engine.name == "onnxruntime"
    assert f"skipped tensorrt: {reason}" in caplog.text


def test_the_node_exports_its_graphs_for_the_cameras_frame_size(tmp_path, monkeypatch):
    """With ``frame_size`` the node's ONNX graphs take the camera's aspect-kept input, so a
    640x480 frame is not letterboxed into a square graph."""
    from seem_ros.ros.params import NodeParams
    from seem_ros.ros.pipeline import load_segmenter_for

    monkeypatch.setenv("SEEM_ROS_CACHE", str(tmp_path / "cache"))
    params = NodeParams(device="cpu", backend="onnxruntime", frame_size="640x480")
    segmenter = load_segmenter_for(params)
    assert segmenter.engine.name == "onnxruntime"
    assert segmenter.engine.input_hw == (256, 352)
    transform = segmenter.transform_for(480, 640)
    assert transform.input_hw == (256, 352) and transform.scale == pytest.approx(256 / 480)
