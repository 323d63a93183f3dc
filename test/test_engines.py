"""Every available backend against PyTorch, for every prompt type; engine cache and selection.

Parity is checked on the whole chain (each backend's own encode, then its own decode) for the
same image and prompt tensors:

* masks: IoU of ``logit > 0`` >= 0.99 (prompted objects' masks; for class names, every
  object query's mask), and
* every decoder output: max |error| <= tolerance * max(1, max |PyTorch value|) with
  tolerance 1e-4 for FP32 and 5e-2 for FP16 (FP16 keeps ~3 significant digits, and errors
  compound over the encoder and three decoder layers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from random_weights import random_model

from seem_ros.engine.base import DECODER_OUTPUTS, OPTIONAL_DECODER_OUTPUTS, Engine, EngineError
from seem_ros.engine.engine_cache import EngineCache, EngineKey
from seem_ros.engine.onnx_export import model_fingerprint
from seem_ros.engine.onnxruntime_engine import (
    CPU_EP,
    CUDA_EP,
    TENSORRT_EP,
    OnnxRuntimeEngine,
    physical_cores,
    provider_chain,
)
from seem_ros.engine.selection import create_engine
from seem_ros.engine.tensorrt_engine import BuildOptions, tensorrt_unavailable_reason
from seem_ros.model.build import build_model
from seem_ros.model.card import ModelCard
from seem_ros.model.prompt_tensors import PromptTensors
from seem_ros.prompt_encoding import build_prompt_tensors
from seem_ros.prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    MemoryPrompt,
    ObjectPrompt,
    Points,
    PromptSet,
    ReferenceRegion,
    Scribble,
)
from seem_ros.segmenter import Segmenter
from seem_ros.transforms import ResizeTransform

GROUPS = (1, 4)  # as test_export.py, so the export folder is shared
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 5e-2
MIN_MASK_IOU = 0.99
TRT_REASON = tensorrt_unavailable_reason()


@pytest.fixture(scope="module")
def reference() -> Segmenter:
    model = random_model("tiny", seed=3)
    return Segmenter(model, ModelCard(config=model.config))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "engine-cache"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-seed3-export"


def _engine(kind: str, reference: Segmenter, export_dir, cache_dir) -> Engine:
    if kind == "tensorrt":
        if TRT_REASON:
            pytest.skip(f"TensorRT parity needs TensorRT and a GPU: {TRT_REASON}")
        return create_engine(
            "tensorrt",
            reference.model,
            reference.card,
            export_dir=export_dir,
            cache_dir=cache_dir,
            group_counts=GROUPS,
        )
    precision = kind.removeprefix("onnxruntime-")
    return create_engine(
        "onnxruntime",
        reference.model,
        reference.card,
        precision=precision,
        export_dir=export_dir,
        cache_dir=cache_dir,
        group_counts=GROUPS,
    )


_ENGINES: dict[str, Engine] = {}


@pytest.fixture(params=["onnxruntime-fp32", "onnxruntime-fp16", "tensorrt"])
def backend(request, reference, export_dir, cache_dir) -> Engine:
    if request.param not in _ENGINES:
        _ENGINES[request.param] = _engine(request.param, reference, export_dir, cache_dir)
    return _ENGINES[request.param]


# ----------------------------------------------------------------------------- prompts
def _scene() -> np.ndarray:
    import cv2

    image = np.full((240, 320, 3), 90, dtype=np.uint8)
    cv2.circle(image, (80, 90), 40, (220, 30, 30), -1)
    cv2.rectangle(image, (170, 40), (260, 130), (30, 30, 220), -1)
    return image


def _disc_mask() -> np.ndarray:
    yy, xx = np.mgrid[:240, :320]
    return (xx - 80) ** 2 + (yy - 90) ** 2 < 40**2


def _prompt_set(kind: str) -> PromptSet:
    rng = np.random.default_rng(1)
    objects = {
        "points": ObjectPrompt(
            points=Points(np.array([[80.0, 90.0], [200.0, 80.0]]), np.array([1, 0]))
        ),
        "box": ObjectPrompt(box=Box(170, 40, 260, 130)),
        "scribble": ObjectPrompt(scribbles=(Scribble(np.array([[60.0, 80.0], [100.0, 100.0]])),)),
        "mask": ObjectPrompt(mask=MaskPrompt(_disc_mask())),
        "text": ObjectPrompt(text="the red disc"),
        "reference": ObjectPrompt(reference=ReferenceRegion(_scene(), _disc_mask())),
        "memory": ObjectPrompt(
            memory=MemoryPrompt(_disc_mask(), rng.normal(size=(2, 64)).astype(np.float32))
        ),
    }
    if kind == "classes":
        return PromptSet(classes=ClassNames(("disc", "square", "background")))
    return PromptSet(objects=[objects[kind]])


def _transform(reference: Segmenter) -> ResizeTransform:
    return ResizeTransform(*_scene().shape[:2], reference.image_size)


@dataclass
class Run:
    outputs: dict[str, np.ndarray]
    class_logits: np.ndarray | None


def _run(engine: Engine, reference: Segmenter, kind: str) -> Run:
    """Encode + decode one prompt type on ``engine`` (every backend gets the same square input,
    the export's); text/reference embeddings come from the PyTorch model for every backend,
    as in :class:`Segmenter`."""
    image, prompt_set = _scene(), _prompt_set(kind)
    transform = _transform(reference)
    model_input = transform.image_to_input(image)[None]
    tensors: PromptTensors[np.ndarray] = build_prompt_tensors(
        prompt_set.objects,
        transform,
        reference.layout,
        embed_text=lambda text: reference.text_embeddings([text])[0],
        embed_reference=reference.reference_token,
        slots=0,
    )
    outputs = engine.decode(engine.encode(model_input), tensors)
    logits = None
    if prompt_set.classes is not None:
        classes = list(prompt_set.classes.names)
        with torch.inference_mode():
            logits = reference.model.classify(
                torch.from_numpy(outputs["object_embeds"][0]),
                torch.from_numpy(reference.text_embeddings(classes)),
            ).numpy()
    return Run(outputs, logits)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a > 0, b > 0).sum()
    return 1.0 if union == 0 else float(np.logical_and(a > 0, b > 0).sum() / union)


PROMPT_KINDS = ("points", "box", "scribble", "mask", "text", "reference", "memory", "classes")


_PYTORCH_RUNS: dict[str, Run] = {}


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_backend_matches_pytorch(backend, reference, kind):
    if kind not in _PYTORCH_RUNS:
        _PYTORCH_RUNS[kind] = _run(reference.engine, reference, kind)
    expected = _PYTORCH_RUNS[kind]
    got = _run(backend, reference, kind)
    tolerance = FP16_TOLERANCE if backend.precision == "fp16" else FP32_TOLERANCE
    optional = [name for name in OPTIONAL_DECODER_OUTPUTS if name in expected.outputs]
    assert optional == ["group_grounding"]  # the tiny decoder has the query-grounding head
    for name in (*DECODER_OUTPUTS, *optional):
        ours, theirs = got.outputs[name], expected.outputs[name]
        assert ours.shape == theirs.shape, name
        scale = max(1.0, float(np.abs(theirs).max()))
        assert float(np.abs(ours - theirs).max()) <= tolerance * scale, name
    masks = "object_masks" if kind == "classes" else "group_masks"
    assert _iou(got.outputs[masks], expected.outputs[masks]) >= MIN_MASK_IOU
    if kind == "classes":
        scale = max(1.0, float(np.abs(expected.class_logits).max()))
        assert np.abs(got.class_logits - expected.class_logits).max() <= tolerance * scale


def test_padded_decoder_graph_gives_the_same_objects_as_an_exact_one(
    reference, export_dir, cache_dir
):
    engine = _engine("onnxruntime-fp32", reference, export_dir, cache_dir)
    transform = _transform(reference)
    objects = [_prompt_set("box").objects[0], _prompt_set("points").objects[0]]
    tensors = build_prompt_tensors(
        objects, transform, reference.layout, embed_text=None, embed_reference=None, slots=0
    )
    features = engine.encode(transform.image_to_input(_scene())[None])
    padded = engine.decode(features, tensors)  # 2 objects run on the 4-group graph
    exact = reference.engine.decode(features, tensors)
    assert padded["group_masks"].shape == (1, 2, 64, 64)
    np.testing.assert_allclose(padded["group_masks"], exact["group_masks"], atol=1e-4)


def test_segmenter_on_onnxruntime_finds_the_same_object(reference, export_dir, cache_dir):
    engine = _engine("onnxruntime-fp32", reference, export_dir, cache_dir)
    on_ort = Segmenter(reference.model, reference.card, engine=engine)
    prompt = ObjectPrompt(text="the red disc", points=Points.single(80, 90))
    square = np.ascontiguousarray(_scene()[:, :240])  # the export's own (square) shape
    ours = on_ort.segment(square, prompt).instances[0]
    theirs = reference.segment(square, prompt).instances[0]
    assert _iou(ours.mask, theirs.mask) >= MIN_MASK_IOU
    assert ours.score == pytest.approx(theirs.score, abs=1e-4)


def test_a_square_export_letterboxes_a_4_3_frame_into_its_input(
    reference, export_dir, cache_dir, caplog
):
    on_ort = Segmenter(
        reference.model,
        reference.card,
        engine=_engine("onnxruntime-fp32", reference, export_dir, cache_dir),
    )
    transform = on_ort.transform_for(*_scene().shape[:2])
    assert transform.fit == "box" and transform.input_hw == (256, 256)
    assert transform.resized_hw == (192, 256)
    assert reference.transform_for(*_scene().shape[:2]).input_hw == (256, 352)
    result = on_ort.segment(_scene(), ObjectPrompt(points=Points.single(80, 90)))
    assert result.instances[0].mask.shape == _scene().shape[:2]
    # said once per frame shape, with the fix; a reference crop is fitted without a word
    crop = np.ascontiguousarray(_scene()[40:140, 30:180])  # the disc, in a 150x100 crop
    on_ort.segment(
        _scene(), ObjectPrompt(reference=ReferenceRegion(crop, _disc_mask()[40:140, 30:180]))
    )
    warnings = [r for r in caplog.records if "letterboxed" in r.getMessage()]
    assert len(warnings) == 1 and "0.75 of the model's scale" in warnings[0].getMessage()
    assert "--frame-size 320x240" in warnings[0].getMessage()


def test_an_export_for_the_cameras_frame_keeps_its_aspect_and_matches_pytorch(reference, tmp_path):
    input_hw = reference.transform_for(*_scene().shape[:2]).input_hw
    engine = create_engine(
        "onnxruntime",
        reference.model,
        reference.card,
        export_dir=tmp_path / "export-320x240",
        cache_dir=tmp_path,
        group_counts=(1,),
        input_hw=input_hw,
    )
    assert engine.input_hw == (256, 352)
    on_ort = Segmenter(reference.model, reference.card, engine=engine)
    assert on_ort.transform_for(*_scene().shape[:2]) == reference.transform_for(240, 320)
    for prompt in (
        ObjectPrompt(text="the red disc", points=Points.single(80, 90)),
        ObjectPrompt(mask=MaskPrompt(_disc_mask())),
        ObjectPrompt(memory=MemoryPrompt(_disc_mask(), np.ones((2, 64), np.float32))),
    ):
        ours = on_ort.segment(_scene(), prompt).instances[0]
        theirs = reference.segment(_scene(), prompt).instances[0]
        assert _iou(ours.mask, theirs.mask) >= MIN_MASK_IOU
        assert ours.score == pytest.approx(theirs.score, abs=1e-4)


# ----------------------------------------------------------------------------- errors
def test_more_objects_than_the_largest_graph_is_a_clear_error(reference, export_dir, cache_dir):
    engine = _engine("onnxruntime-fp32", reference, export_dir, cache_dir)
    transform = _transform(reference)
    objects = [_prompt_set("box").objects[0]] * 5
    tensors = build_prompt_tensors(
        objects, transform, reference.layout, embed_text=None, embed_reference=None, slots=0
    )
    features = reference.engine.encode(transform.image_to_input(_scene())[None])
    with pytest.raises(EngineError, match="largest exported decoder takes 4"):
        engine.decode(features, tensors)


def test_wrong_image_shape_is_a_clear_error(reference, export_dir, cache_dir):
    engine = _engine("onnxruntime-fp32", reference, export_dir, cache_dir)
    with pytest.raises(EngineError, match=r"shape \(1, 3, 256, 256\)"):
        engine.encode(np.zeros((1, 3, 128, 128), np.float32))


def test_unknown_execution_provider_is_rejected(export_dir):
    with pytest.raises(EngineError, match="not installed"):
        OnnxRuntimeEngine(export_dir, providers=["NoSuchExecutionProvider"])


# ----------------------------------------------------------------------------- selection
def test_auto_takes_the_first_working_backend_and_logs_why_others_were_skipped(
    reference, export_dir, cache_dir, caplog
):
    with caplog.at_level(logging.INFO, logger="seem_ros.engine.selection"):
        engine = create_engine(
            "auto",
            reference.model,
            reference.card,
            export_dir=export_dir,
            cache_dir=cache_dir,
            group_counts=GROUPS,
        )
    expected = "onnxruntime" if TRT_REASON else "tensorrt"
    assert engine.name == expected
    message = next(r.getMessage() for r in caplog.records if "inference backend" in r.getMessage())
    assert expected in message
    if TRT_REASON:
        assert f"skipped tensorrt: {TRT_REASON}" in message


@pytest.mark.skipif(TRT_REASON is None, reason="TensorRT is available here")
def test_naming_an_unavailable_backend_raises_with_the_reason(reference, cache_dir):
    with pytest.raises(EngineError, match=r"tensorrt|TensorRT|GPU"):
        create_engine("tensorrt", reference.model, reference.card, cache_dir=cache_dir)


def test_unknown_backend_name_is_rejected(reference):
    with pytest.raises(EngineError, match="unknown backend 'tflite'"):
        create_engine("tflite", reference.model, reference.card)


def test_a_changed_model_is_re_exported_not_served_stale_graphs(reference, tmp_path):
    first = build_model("tiny", seed=11)
    card = ModelCard(config=first.config)
    create_engine("onnxruntime", first, card, export_dir=tmp_path, group_counts=(1,))
    second = build_model("tiny", seed=12)
    engine = create_engine("onnxruntime", second, card, export_dir=tmp_path, group_counts=(1,))
    assert engine.manifest.model_sha256 == model_fingerprint(second)
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, 256, 256)).astype(np.float32)
    with torch.inference_mode():
        expected = second.encode(torch.from_numpy(image))[0].numpy()
    np.testing.assert_allclose(engine.encode(image)[0], expected, atol=1e-4)


# ----------------------------------------------------------------------------- providers
def test_provider_chain_prefers_tensorrt_then_cuda_then_cpu():
    chain = provider_chain([CPU_EP, CUDA_EP, TENSORRT_EP], fp16=True, cache_dir=None)
    assert [name for name, _ in chain] == [TENSORRT_EP, CUDA_EP, CPU_EP]
    assert chain[0][1]["trt_fp16_enable"] is True


def test_provider_chain_on_a_cpu_only_machine_is_the_cpu_provider():
    assert provider_chain([CPU_EP], fp16=False, cache_dir=None) == [(CPU_EP, {})]


def test_onnxruntime_uses_fp32_and_all_physical_cores_on_the_cpu(export_dir):
    engine = OnnxRuntimeEngine(export_dir)
    if engine.providers[0][0] == CPU_EP:
        assert engine.precision == "fp32"
    assert engine.threads == physical_cores() >= 1


# ----------------------------------------------------------------------------- engine cache
def _key(**changes: str) -> EngineKey:
    fields = {
        "onnx_sha256": "a" * 64,
        "gpu": "NVIDIA H100 80GB HBM3 (sm_90)",
        "tensorrt_version": "10.3.0",
        "tensorrt_major": "10",
        "precision": "fp16",
        "build_options": BuildOptions().signature(10),
    } | changes
    return EngineKey(**fields)


def test_cached_engine_with_the_same_key_is_loaded(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store("encoder", _key(), b"plan bytes")
    found = cache.lookup("encoder", _key())
    assert found.plan is not None and found.plan.read_bytes() == b"plan bytes"


def test_missing_engine_is_built(tmp_path):
    assert EngineCache(tmp_path).lookup("encoder", _key()).plan is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"onnx_sha256": "b" * 64}, "stale engine"),
        ({"gpu": "Orin (sm_87)"}, "foreign engine"),
        ({"tensorrt_version": "10.7.0"}, "foreign engine"),
        ({"precision": "fp32"}, "another precision"),
        ({"tensorrt_major": "11"}, "another TensorRT major version"),
        ({"build_options": BuildOptions(workspace_mb=512).signature(10)}, "optimisation-profile"),
    ],
)
def test_stale_or_foreign_engine_is_not_loaded(tmp_path, change, why):
    cache = EngineCache(tmp_path)
    cache.store("encoder", _key(), b"plan bytes")
    found = cache.lookup("encoder", _key(**change))
    assert found.plan is None
    assert why in found.reason


def test_tampered_engine_file_is_not_loaded(tmp_path):
    cache = EngineCache(tmp_path)
    plan = cache.store("decoder_g1", _key(), b"plan bytes")
    plan.write_bytes(b"other bytes")
    assert "corrupt" in cache.lookup("decoder_g1", _key()).reason


def test_engine_without_a_key_record_is_not_trusted(tmp_path):
    cache = EngineCache(tmp_path)
    cache.plan_path("encoder").parent.mkdir(parents=True, exist_ok=True)
    cache.plan_path("encoder").write_bytes(b"copied from elsewhere")
    assert "origin unknown" in cache.lookup("encoder", _key()).reason


def test_rebuilt_engine_replaces_the_stale_one(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store("encoder", _key(), b"old")
    cache.store("encoder", _key(onnx_sha256="c" * 64), b"new")
    assert cache.lookup("encoder", _key()).plan is None
    assert cache.lookup("encoder", _key(onnx_sha256="c" * 64)).plan.read_bytes() == b"new"


def test_engine_keys_name_the_tensorrt_major_and_how_fp16_is_built(tmp_path):
    from seem_ros.engine.tensorrt_engine import engine_key

    graph = tmp_path / "encoder.onnx"
    graph.write_bytes(b"graph")
    on_10 = engine_key(graph, BuildOptions(), gpu="Orin (sm_87)", tensorrt_version="10.3.0")
    on_11 = engine_key(graph, BuildOptions(), gpu="Orin (sm_87)", tensorrt_version="11.4.0.106")
    assert (on_10.tensorrt_major, on_11.tensorrt_major) == ("10", "11")
    assert "builder flag" in on_10.build_options and "fp16 graph" in on_11.build_options


def test_build_options_refuse_int8_and_say_why():
    with pytest.raises(EngineError, match="Q/DQ"):
        BuildOptions(precision="int8")


def test_build_options_reject_an_inverted_batch_profile():
    with pytest.raises(EngineError, match="opt_batch <= max_batch"):
        BuildOptions(max_batch=2, opt_batch=4)


@pytest.mark.skipif(TRT_REASON is not None, reason=f"needs TensorRT and a GPU: {TRT_REASON}")
def test_tensorrt_engine_is_cached_and_reused(reference, export_dir, tmp_path):
    from seem_ros.engine.tensorrt_engine import TensorRTEngine

    TensorRTEngine(export_dir, cache_dir=tmp_path)
    plan = tmp_path / "encoder.plan"
    built_at = plan.stat().st_mtime_ns
    TensorRTEngine(export_dir, cache_dir=tmp_path)
    assert plan.stat().st_mtime_ns == built_at


def test_load_segmenter_with_backend_runs_the_segmenter_on_that_backend(tmp_path):
    from seem_ros.engine.selection import load_segmenter_with_backend

    segmenter = load_segmenter_with_backend(
        backend="torch", allow_untrained=True, cache_dir=tmp_path
    )
    assert segmenter.engine.name == "torch"
    assert segmenter.segment(_scene(), Points.single(80, 90)).instances


def test_graphs_take_fewer_slots_and_padding_them_changes_nothing(reference, export_dir, cache_dir):
    engine = _engine("onnxruntime-fp32", reference, export_dir, cache_dir)
    assert engine.max_slots == 8 < reference.layout.slots
    transform = _transform(reference)
    objects = [_prompt_set("points").objects[0]]
    tensors = build_prompt_tensors(
        objects, transform, reference.layout, embed_text=None, embed_reference=None, slots=0
    )
    assert tensors.visual_valid.shape[2] == 2  # two clicks need two slots, padded to 8 in the graph
    features = engine.encode(transform.image_to_input(_scene())[None])
    np.testing.assert_allclose(
        engine.decode(features, tensors)["group_masks"],
        reference.engine.decode(features, tensors)["group_masks"],
        atol=1e-4,
    )
