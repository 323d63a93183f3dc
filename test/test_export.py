"""ONNX export: graphs, checks, metadata, manifest and the ``seem-ros export`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from random_weights import random_model

from seem_ros.engine.onnx_export import (
    DECODER_INPUTS,
    ExportError,
    ExportManifest,
    export_model,
    graph_metadata,
    model_fingerprint,
)
from seem_ros.model.card import ModelCard

GROUPS = (1, 4)


@pytest.fixture(scope="module")
def model():
    return random_model("tiny", seed=3)


@pytest.fixture(scope="module")
def card(model):
    return ModelCard(
        config=model.config, vocabulary=["mug", "door handle"], weights_sha256="ab" * 32
    )


@pytest.fixture(scope="module")
def manifest(model, card, tmp_path_factory) -> ExportManifest:
    # test_engines.py reuses this folder (same model, same group counts) to save export time
    folder = tmp_path_factory.getbasetemp() / "tiny-seed3-export"
    return export_model(model, card, folder, group_counts=GROUPS)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_encoder_decoders_text_encoder_and_manifest(manifest):
    loaded = ExportManifest.load(manifest.folder)
    assert loaded.group_counts == GROUPS
    names = {"encoder.onnx", "decoder_g1.onnx", "decoder_g4.onnx", "text_encoder.onnx"}
    assert names <= {p.name for p in manifest.folder.iterdir()}
    assert set(loaded.graph_sha256) == names


def test_exported_graphs_pass_the_checker_with_standard_ops_only(manifest):
    for name in manifest.graph_sha256:
        proto = onnx.load(str(manifest.path(name)))
        onnx.checker.check_model(proto, full_check=True)
        assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}
        assert max(op.version for op in proto.opset_import) >= 17
        assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}, name


def test_graphs_carry_the_model_card_in_metadata(manifest, card, model):
    for name in manifest.graph_sha256:
        meta = graph_metadata(manifest.path(name))
        assert json.loads(meta["vocabulary"]) == ["mug", "door handle"]
        assert meta["weights_sha256"] == card.weights_sha256
        assert json.loads(meta["config"])["name"] == "tiny"
        assert meta["model_sha256"] == model_fingerprint(model)
        assert ModelCard.from_json(meta["model_card"]).vocabulary == card.vocabulary
    assert graph_metadata(manifest.path("decoder_g4.onnx"))["groups"] == "4"


def test_decoder_has_no_boolean_where_left(manifest):
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(manifest.path("decoder_g1.onnx"))))
    bool_values = {
        v.name
        for v in proto.graph.value_info
        if v.type.tensor_type.elem_type == onnx.TensorProto.BOOL
    }
    where_outputs = {n.output[0] for n in proto.graph.node if n.op_type == "Where"}
    assert not where_outputs & bool_values


def test_export_leaves_the_model_unchanged_and_in_eval_mode(manifest, model):
    assert model_fingerprint(model) == manifest.model_sha256  # computed before exporting
    assert not any(module.training for module in model.modules())


def test_encoder_graph_matches_pytorch_on_a_batch_of_two(manifest, model):
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 255
    with torch.inference_mode():
        expected = model.encode(images)
    got = _session(manifest.path("encoder.onnx")).run(None, {"image": images.numpy()})
    for ours, reference in zip(got, expected):
        assert ours.shape == tuple(reference.shape)
        np.testing.assert_allclose(ours, reference.numpy(), atol=1e-4)


def test_text_encoder_graph_matches_pytorch(manifest, model):
    phrases = ["the red mug on the left", "door handle", "person"]
    tokens = model.text_encoder.tokenize(phrases)
    with torch.inference_mode():
        expected = model.text_encoder(tokens).numpy()
    (got,) = _session(manifest.path("text_encoder.onnx")).run(None, {"tokens": tokens.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_decoder_graph_inputs_are_features_then_prompt_tensors(manifest):
    session = _session(manifest.path("decoder_g4.onnx"))
    assert tuple(i.name for i in session.get_inputs()) == DECODER_INPUTS
    group_valid = next(i for i in session.get_inputs() if i.name == "group_valid")
    assert group_valid.shape == [1, 4]


def test_decoder_for_picks_the_smallest_graph_that_fits(manifest):
    assert manifest.decoder_for(1)[0] == 1
    assert manifest.decoder_for(3)[0] == 4
    with pytest.raises(ExportError, match="largest exported decoder takes 4"):
        manifest.decoder_for(5)


def test_manifest_with_a_missing_graph_is_rejected(manifest, tmp_path):
    data = json.loads((manifest.folder / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ExportError, match=r"encoder\.onnx but the file is missing"):
        ExportManifest.load(tmp_path)


def test_missing_manifest_says_to_export_first(tmp_path):
    with pytest.raises(ExportError, match="run `seem-ros export` first"):
        ExportManifest.load(tmp_path)


@pytest.mark.parametrize(
    ("groups", "opset", "message"),
    [((), 17, "group counts"), ((0,), 17, "group counts"), ((1,), 13, "opset 13")],
)
def test_export_rejects_bad_settings(model, card, tmp_path, groups, opset, message):
    with pytest.raises(ExportError, match=message):
        export_model(model, card, tmp_path, group_counts=groups, opset=opset)


def test_export_command_writes_a_loadable_export(tmp_path):
    from seem_ros.cli import main

    assert (
        main(
            [
                "export",
                "--out",
                str(tmp_path),
                "--groups",
                "2",
                "--no-text-encoder",
                "--opset",
                "18",
            ]
        )
        == 0
    )
    loaded = ExportManifest.load(tmp_path)
    assert loaded.group_counts == (2,)
    assert loaded.text_encoder is None
    assert loaded.opset == 18


def test_export_command_makes_the_encoder_for_the_cameras_frame(tmp_path):
    """``--frame-size`` gives our models' encoder the frame's own aspect (short side at the
    input size, padded to 32), so a 640x480 camera is not letterboxed into the square."""
    from seem_ros.cli import main

    args = ["export", "--out", str(tmp_path), "--groups", "1", "--no-text-encoder"]
    assert main([*args, "--frame-size", "640x480"]) == 0
    loaded = ExportManifest.load(tmp_path)
    assert loaded.input_hw == (256, 352) and loaded.image_shape[1:] == (3, 256, 352)
    encoder = _session(loaded.path(loaded.encoder))
    assert encoder.get_inputs()[0].shape[1:] == [3, 256, 352]


def test_export_rejects_an_input_off_the_backbones_stride(model, card, tmp_path):
    with pytest.raises(ExportError, match="multiples of 32"):
        export_model(model, card, tmp_path, group_counts=(1,), input_hw=(256, 300))
