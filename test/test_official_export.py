"""Official models through ``seem-ros export`` and ONNX Runtime: the same answers as PyTorch,
FP32 and FP16, for every prompt branch; non-square camera inputs."""

from __future__ import annotations

import numpy as np
import pytest
from official_models import noise_image, small_official_segmenter

from seem_ros.engine.base import EngineError
from seem_ros.engine.onnx_export import export_model
from seem_ros.engine.onnxruntime_engine import OnnxRuntimeEngine
from seem_ros.prompts import ClassNames, ObjectPrompt, Points, ReferringText, Scribble
from seem_ros.segmenter import Segmenter


def click(x: float, y: float, positive: bool = True) -> Points:
    return Points(np.array([[x, y]]), np.array([int(positive)]))


@pytest.fixture(scope="module")
def torch_segmenter():
    return small_official_segmenter()


@pytest.fixture(scope="module")
def export(torch_segmenter, tmp_path_factory):
    folder = tmp_path_factory.mktemp("official_export")
    return export_model(
        torch_segmenter.model,
        torch_segmenter.card,
        folder,
        group_counts=(1, 3),
        input_hw=(64, 96),
    )


def _segmenter(torch_segmenter, engine) -> Segmenter:
    return Segmenter(torch_segmenter.model, torch_segmenter.card, engine=engine)


PROMPTS = [
    ObjectPrompt(points=click(30, 20)),
    ObjectPrompt(text=ReferringText("the green bottle")),
    ObjectPrompt(
        points=click(70, 40),
        scribbles=(Scribble(np.array([[60.0, 10.0], [80.0, 30.0]]), False),),
    ),
]


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnxruntime_matches_pytorch_for_every_prompt_branch(torch_segmenter, export, precision):
    image = noise_image(64, 96)
    engine = OnnxRuntimeEngine(export, precision=precision, providers=["CPUExecutionProvider"])
    ours = _segmenter(torch_segmenter, engine)
    first_torch = torch_segmenter.segment(image, PROMPTS)
    first_ort = ours.segment(image, PROMPTS)
    floor = 0.99 if precision == "fp32" else 0.95
    for a, b in zip(first_torch.instances, first_ort.instances):
        assert _mask_iou(a.mask, b.mask) >= floor
    # a second round with memory (the model's own logits come back as the memory)
    again = [
        ObjectPrompt(points=click(30, 20), memory=first_ort.instances[0].memory),
        ObjectPrompt(points=click(70, 40), memory=first_ort.instances[2].memory),
    ]
    second_torch = torch_segmenter.segment(image, again)
    second_ort = ours.segment(image, again)
    for a, b in zip(second_torch.instances, second_ort.instances):
        assert _mask_iou(a.mask, b.mask) >= floor
    if precision == "fp32":
        encoded_t = torch_segmenter.encode_image(image)
        encoded_o = ours.encode_image(image)
        for ft, fo in zip(encoded_t.features, encoded_o.features):
            np.testing.assert_allclose(ft, fo, rtol=1e-3, atol=1e-3)


def test_generic_segmentation_matches_pytorch(torch_segmenter, export):
    image = noise_image(64, 96, seed=3)
    engine = OnnxRuntimeEngine(export, precision="fp32", providers=["CPUExecutionProvider"])
    classes = ClassNames(("mug", "person", "wall"))
    a = torch_segmenter.segment(image, classes, task="semantic")
    b = _segmenter(torch_segmenter, engine).segment(image, classes, task="semantic")
    assert (a.semantic == b.semantic).mean() >= 0.99


def test_an_image_of_another_shape_is_refused_with_the_exported_shape(torch_segmenter, export):
    engine = OnnxRuntimeEngine(export, precision="fp32", providers=["CPUExecutionProvider"])
    with pytest.raises(EngineError, match="96"):
        _segmenter(torch_segmenter, engine).segment(noise_image(64, 64), PROMPTS[:1])


def test_the_exported_text_encoder_gives_the_language_encoders_embeddings(torch_segmenter, export):
    import onnxruntime as ort

    language = torch_segmenter.model.language
    session = ort.InferenceSession(
        str(export.path(export.text_encoder)), providers=["CPUExecutionProvider"]
    )
    ids = language.tokenize(["a mug", "the person on the left"]).input_ids.numpy()
    tokens, sentences = session.run(None, {"tokens": ids})
    expected_tokens, expected_sentences = language.forward_tokens(
        language.tokenize(["a mug", "the person on the left"]).input_ids
    )
    np.testing.assert_allclose(sentences, expected_sentences.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(tokens, expected_tokens.detach().numpy(), atol=1e-4)


def test_prompts_without_phrases_or_references_run_the_visual_only_graph(torch_segmenter, export):
    assert export.visual_decoders, "official exports carry visual-only decoders"
    engine = OnnxRuntimeEngine(export, precision="fp32", providers=["CPUExecutionProvider"])
    ours = _segmenter(torch_segmenter, engine)
    image = noise_image(64, 96, seed=5)
    clicks = [ObjectPrompt(points=click(30, 20)), ObjectPrompt(points=click(70, 40))]
    for a, b in zip(
        torch_segmenter.segment(image, clicks).instances, ours.segment(image, clicks).instances
    ):
        assert _mask_iou(a.mask, b.mask) >= 0.99
    assert set(engine._decoders) == {(3, True)}  # the 3-object graph, visual-only variant
    ours.segment(image, [ObjectPrompt(text=ReferringText("the mug"))])
    assert (1, False) in engine._decoders  # a phrase needs the full graph
