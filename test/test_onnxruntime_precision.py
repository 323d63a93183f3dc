"""ONNX Runtime precision: ``auto`` is FP16 only where a GPU is present, the reported precision
is the one that runs, and GridSample stays FP32 in FP16 graphs (and still runs on the CPU EP)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from official_models import noise_image, small_official_segmenter
from onnx import TensorProto

from seem_ros.engine.onnx_export import export_model
from seem_ros.engine.onnxruntime_engine import (
    CPU_EP,
    CUDA_EP,
    ORT_FP32_OPS,
    TENSORRT_EP,
    OnnxRuntimeEngine,
    cuda_device_count,
    resolve_precision,
    running_precision,
)
from seem_ros.prompts import ObjectPrompt, Points
from seem_ros.segmenter import Segmenter

NO_GPU = cuda_device_count() == 0


@pytest.fixture(scope="module")
def official():
    return small_official_segmenter()


@pytest.fixture(scope="module")
def export(official, tmp_path_factory):
    folder = tmp_path_factory.mktemp("official_precision_export")
    return export_model(official.model, official.card, folder, group_counts=(1,), input_hw=(64, 96))


def _float16_initializers(path) -> int:
    return sum(i.data_type == TensorProto.FLOAT16 for i in onnx.load(str(path)).graph.initializer)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA GPU")
def test_precision_auto_on_a_cpu_only_machine_is_fp32(export, tmp_path):
    # GPU providers being installed is not enough: auto asks whether a GPU is there
    assert resolve_precision("auto", CUDA_EP, gpu_present=cuda_device_count() > 0) == "fp32"
    engine = OnnxRuntimeEngine(export, precision="auto", cache_dir=tmp_path)
    engine.warm_up()
    assert engine.precision == "fp32"
    assert engine.active_providers == [CPU_EP]
    assert all(graph == export.path(name) for name, graph in engine.loaded_graphs.items())


@pytest.mark.parametrize(
    ("leading", "gpu", "expected"),
    [
        (TENSORRT_EP, False, "fp32"),
        (CUDA_EP, False, "fp32"),
        (CPU_EP, True, "fp32"),
        (CUDA_EP, True, "fp16"),
        (TENSORRT_EP, True, "fp16"),
    ],
)
def test_precision_auto_is_fp16_only_for_a_gpu_provider_with_a_gpu(leading, gpu, expected):
    assert resolve_precision("auto", leading, gpu_present=gpu) == expected


def test_the_tensorrt_providers_fp16_flag_counts_only_while_that_provider_runs():
    # the TensorRT EP did not load: ONNX Runtime runs the FP32 graph on the CUDA EP
    assert (
        running_precision(
            fp16_graph_loaded=False, active_providers=[CUDA_EP, CPU_EP], tensorrt_fp16=True
        )
        == "fp32"
    )
    assert (
        running_precision(
            fp16_graph_loaded=False, active_providers=[TENSORRT_EP, CPU_EP], tensorrt_fp16=True
        )
        == "fp16"
    )
    assert (
        running_precision(fp16_graph_loaded=True, active_providers=[CPU_EP], tensorrt_fp16=False)
        == "fp16"
    )


def test_an_engine_that_reports_fp16_runs_fp16_graphs(export, tmp_path):
    engine = OnnxRuntimeEngine(export, precision="fp16", providers=[CPU_EP], cache_dir=tmp_path)
    engine.warm_up()
    assert engine.precision == "fp16"
    graphs = {export.encoder, *export.decoders.values(), *export.visual_decoders.values()}
    assert set(engine.loaded_graphs) == graphs
    for graph in engine.loaded_graphs.values():
        assert graph.parent == tmp_path and _float16_initializers(graph) > 0


def test_fp16_decoders_keep_gridsample_fp32_and_run_on_the_cpu(official, export, tmp_path):
    assert "GridSample" in ORT_FP32_OPS
    engine = OnnxRuntimeEngine(export, precision="fp16", providers=[CPU_EP], cache_dir=tmp_path)
    engine.warm_up()
    decoder = onnx.shape_inference.infer_shapes(
        onnx.load(str(engine.loaded_graphs[export.decoders[1]]))
    )
    graph = decoder.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input]}
    samplers = [node for node in graph.node if node.op_type == "GridSample"]
    assert samplers, "the official decoder samples features with GridSample"
    for node in samplers:
        assert [types[name] for name in node.input] == [TensorProto.FLOAT] * 2
        assert types[node.output[0]] == TensorProto.FLOAT
    # and the converted graph answers a click like PyTorch does
    image = noise_image(64, 96)
    reference = official.segment(image, ObjectPrompt(points=Points.single(40, 30)))
    fp16 = Segmenter(official.model, official.card, engine=engine).segment(
        image, ObjectPrompt(points=Points.single(40, 30))
    )
    want, got = reference.instances[0].mask, fp16.instances[0].mask
    assert 0 < want.sum() < want.size  # a mask with extent, so the IoU says something
    assert np.logical_and(want, got).sum() / np.logical_or(want, got).sum() >= 0.99


def test_the_fp16_graphs_tensorrt_11_builds_from_answer_like_pytorch(official, export, tmp_path):
    # TensorRT 11 keeps the graph's types, so these FP16 graphs *are* its FP16 engines'
    # arithmetic; the CPU EP runs them here, where no GPU is
    import onnxruntime as ort

    from seem_ros.benchmark.workload import click_tensors
    from seem_ros.engine.graph_io import decoder_feed
    from seem_ros.engine.onnxruntime_engine import fp16_graph
    from seem_ros.engine.tensorrt_engine import TENSORRT_FP32_OPS

    def session(name: str):
        graph = fp16_graph(export.path(name), tmp_path, keep_fp32=TENSORRT_FP32_OPS)
        assert _float16_initializers(graph) > 0
        return ort.InferenceSession(str(graph), providers=[CPU_EP])

    image = noise_image(64, 96)
    encoded = official.encode_image(image)
    model_input = encoded.transform.image_to_input(image)[None].astype(np.float32)
    features = session(export.encoder).run(list(export.feature_names), {"image": model_input})
    prompts = click_tensors(official, 1, 96, 64)
    decoder = session(export.decoders[1])
    declared = {tensor.name for tensor in decoder.get_inputs()}
    feed = {
        k: v for k, v in decoder_feed(tuple(features), prompts, 1, export).items() if k in declared
    }
    names = [o.name for o in decoder.get_outputs()]
    got = dict(zip(names, decoder.run(names, feed)))["group_masks"][0, 0] > 0
    want = official.engine.decode(encoded.features, prompts)["group_masks"][0, 0] > 0
    assert 0 < want.sum() < want.size  # a mask with extent, so the IoU says something
    assert np.logical_and(want, got).sum() / np.logical_or(want, got).sum() >= 0.99
