"""The torch-free runtime gives the PyTorch path's answers: tokenizer ids, class scores, text and
reference embeddings, and whole segmentations of every prompt kind, from an export folder on
ONNX Runtime (``Segmenter.from_export``). The venv without torch is test_runtime_core.py."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import ftfy
import numpy as np
import pytest
import regex
import torch
import torch.nn.functional as F
from official_models import noise_image, small_official_segmenter

from seem_ros.engine.base import EngineError
from seem_ros.engine.export_manifest import ExportManifest
from seem_ros.engine.onnx_export import export_model
from seem_ros.model.weights import WeightsError
from seem_ros.prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    ObjectPrompt,
    Points,
    PromptError,
    ReferenceRegion,
    ReferringText,
    Scribble,
)
from seem_ros.runtime import numpy_ops
from seem_ros.runtime.tokenizer import (
    BytePairEncoding,
    ClipTokenizer,
    OpenClipTokenizer,
    TokenizerError,
    bundled_bpe_path,
)
from seem_ros.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]
DEMO_MODEL = REPO / "models" / "seem_tiny_demo.safetensors"
TEXTS = [
    "",
    "a red star",
    "  The   RED\tstar\n on the LEFT ",
    "door handle; mug",
    "it's the cat's toy, isn't it?",
    "naïve café crème brûlée",
    "日本語のテキスト",
    "emoji 🤖 robot 👍🏽",
    "&amp; &lt;b&gt; html &quot;quoted&quot;",
    "<start_of_text> literal <end_of_text>",
    "<|endoftext|> the <|startoftext|> and <|ENDOFTEXT|>",
    "123 4567 8.9 3rd",
    "x" * 300,
    "a " * 100,
    "ﬁ ligature and Ⅻ",
    "\u00a0non-breaking\u2003spaces\u3000here",
    "hyphen-ated under_scored slash/ed",
]


# ----------------------------------------------------------------------------- tokenizers
@pytest.fixture(scope="module")
def bpe() -> BytePairEncoding:
    path = bundled_bpe_path()
    assert path is not None, "open_clip bundles CLIP's BPE file"
    return BytePairEncoding.load(path)


@pytest.mark.parametrize("context_length", [16, 77])
def test_our_tokenizer_gives_open_clips_ids(bpe, context_length):
    from open_clip.tokenizer import SimpleTokenizer

    expected = SimpleTokenizer(context_length=context_length)(TEXTS).numpy()
    ours = OpenClipTokenizer(bpe, context_length=context_length)(TEXTS)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, expected)


def test_our_tokenizer_gives_the_demo_models_own_ids(bpe):
    segmenter = Segmenter.from_pretrained(DEMO_MODEL)
    encoder = segmenter.model.text_encoder
    expected = encoder.tokenize(TEXTS).numpy()
    np.testing.assert_array_equal(OpenClipTokenizer(bpe, context_length=16)(TEXTS), expected)


_SPECIAL = {"<|startoftext|>": 49406, "<|endoftext|>": 49407}


def _official_ids_on_open_clip(text: str) -> list[int]:
    """The official tokenizer as it was built on open_clip's ``SimpleTokenizer`` (its BPE and
    vocabulary) before the torch-free one: the reference the runtime's must equal."""
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer()
    words = regex.compile(
        r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
        r"[^\s\p{L}\p{N}]+",
        regex.IGNORECASE,
    )
    ids: list[int] = []
    for chunk in regex.split(r"(<\|startoftext\|>|<\|endoftext\|>)", text):
        if chunk in _SPECIAL:
            ids.append(_SPECIAL[chunk])
            continue
        cleaned = regex.sub(r"\s+", " ", ftfy.fix_text(chunk)).strip().lower()
        for word in words.findall(cleaned):
            if word in _SPECIAL:
                ids.append(_SPECIAL[word])
                continue
            symbols = "".join(tokenizer.byte_encoder[b] for b in word.encode("utf-8"))
            ids.extend(tokenizer.encoder[p] for p in tokenizer.bpe(symbols).split(" "))
    return ids


def test_official_tokenizer_gives_the_ids_of_the_open_clip_based_one(bpe):
    tokenizer = ClipTokenizer(bpe)
    ids, mask = tokenizer(TEXTS)
    for row, text in enumerate(TEXTS):
        expected = [49406, *_official_ids_on_open_clip(text)[:75], 49407]
        assert ids[row, : len(expected)].tolist() == expected, text
        assert (ids[row, len(expected) :] == 49407).all()
        assert mask[row].sum() == len(expected)


def test_the_language_encoders_tokenizer_is_the_runtimes(bpe):
    from seem_ros.model.official.language import clip_tokenizer

    batch = clip_tokenizer()(TEXTS)
    ids, mask = ClipTokenizer(bpe)(TEXTS)
    np.testing.assert_array_equal(batch.input_ids.numpy(), ids)
    np.testing.assert_array_equal(batch.attention_mask.numpy(), mask)


def test_a_file_that_is_not_clips_vocabulary_is_refused(tmp_path):
    path = tmp_path / "bpe.txt.gz"
    path.write_bytes(gzip.compress(b"#version\na b\n"))
    with pytest.raises(TokenizerError, match="does not hold CLIP's BPE vocabulary"):
        BytePairEncoding(path)
    with pytest.raises(TokenizerError, match="cannot read"):
        BytePairEncoding(tmp_path / "missing.gz")


# ----------------------------------------------------------------------------- numpy ops
@pytest.mark.parametrize("align_corners", [False, True])
def test_numpy_grid_sample_is_torchs_bilinear_with_zero_padding(align_corners):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((5, 7, 9)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (40, 2)).astype(np.float32)  # some outside the map
    expected = F.grid_sample(
        torch.from_numpy(features)[None],
        torch.from_numpy(grid)[None, :, None],
        mode="bilinear",
        padding_mode="zeros",
        align_corners=align_corners,
    )[0, :, :, 0].T.numpy()
    got = numpy_ops.grid_sample(features, grid, align_corners=align_corners)
    np.testing.assert_allclose(got, expected, atol=1e-5)


# ----------------------------------------------------------------------------- our models
@pytest.fixture(scope="module")
def demo() -> Segmenter:
    return Segmenter.from_pretrained(DEMO_MODEL)


@pytest.fixture(scope="module")
def demo_export(demo, tmp_path_factory, scene_image) -> Path:
    """Exported for the test scene's frame shape, as for a camera (its input keeps the aspect)."""
    folder = tmp_path_factory.mktemp("demo_export")
    input_hw = demo.transform_for(*scene_image.shape[:2]).input_hw
    export_model(demo.model, demo.card, folder, group_counts=(1, 3), input_hw=input_hw)
    return folder


@pytest.fixture(scope="module")
def runtime(demo_export) -> Segmenter:
    return Segmenter.from_export(demo_export, backend="onnxruntime")


def test_export_carries_the_card_heads_and_vocabulary(demo_export, demo):
    manifest = ExportManifest.load(demo_export)
    assert manifest.runs_without_torch
    assert (demo_export / manifest.card).is_file() and (demo_export / manifest.heads).is_file()
    assert manifest.bpe_vocab is not None and (demo_export / manifest.bpe_vocab).is_file()
    runtime = Segmenter.from_export(demo_export, backend="onnxruntime")
    assert runtime.model is None
    assert runtime.card.to_json() == demo.card.to_json()


def test_numpy_class_scores_equal_the_models_classify(demo, runtime):
    embeds = np.random.default_rng(1).standard_normal((16, 64)).astype(np.float32)
    classes = demo.text_embeddings(["star", "ring", "wall"])
    with torch.no_grad():
        expected = demo.model.classify(torch.from_numpy(embeds), torch.from_numpy(classes))
    assert float(demo.model.void_logit) != 0.0  # the trained "no object" column is compared
    got = runtime.heads.classify(embeds, classes)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_text_embeddings_equal_the_pytorch_text_towers(demo, runtime):
    texts = ["star", "the small red star", "door handle; mug", "x" * 200]
    np.testing.assert_allclose(
        runtime.text_embeddings(texts), demo.text_embeddings(texts), atol=1e-5
    )


def test_reference_tokens_equal_the_pytorch_samplers(demo, runtime, scene_image):
    mask = np.zeros(scene_image.shape[:2], bool)
    mask[60:120, 50:110] = True
    region = ReferenceRegion(scene_image.copy(), mask)
    np.testing.assert_allclose(
        runtime.reference_token(region), demo.reference_token(region), atol=1e-4
    )


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[1]) ** 2 + (cols - centre[0]) ** 2 <= radius**2


def _prompt_kinds(image: np.ndarray) -> dict[str, list]:
    hw = image.shape[:2]
    return {
        "classes": [ClassNames.parse("circle; square; triangle; wall")],
        "vocabulary": [],
        "refer": [ReferringText("the red circle")],
        "points": [Points(np.array([[215.0, 85.0], [80.0, 90.0]]), np.array([1, 0]))],
        "box": [Box(165, 35, 265, 135)],
        "scribble": [ObjectPrompt(scribbles=(Scribble(np.array([[60, 90], [100, 95]])),))],
        "mask": [MaskPrompt(_disc(hw, (80, 90), 30))],
        "reference": [
            ObjectPrompt(reference=ReferenceRegion(image.copy(), _disc(hw, (80, 90), 35)))
        ],
        "composed": [
            ObjectPrompt(text=ReferringText("the green triangle"), points=Points.single(100, 200))
        ],
        "several": [Points.single(80, 90), Box(165, 35, 265, 135), ReferringText("the triangle")],
    }


def _assert_same_result(expected, got) -> None:
    assert [i.label for i in got.instances] == [i.label for i in expected.instances]
    for mine, theirs in zip(got.instances, expected.instances):
        union = (mine.mask | theirs.mask).sum()
        iou = (mine.mask & theirs.mask).sum() / union if union else 1.0
        assert iou >= 0.99, (mine.label, iou)
        assert mine.score == pytest.approx(theirs.score, abs=2e-3)


@pytest.mark.parametrize(
    "kind",
    ["classes", "vocabulary", "refer", "points", "box", "scribble", "mask", "reference",
     "composed", "several"],
)  # fmt: skip
def test_runtime_segments_every_prompt_kind_as_pytorch_does(demo, runtime, scene_image, kind):
    prompts = _prompt_kinds(scene_image)[kind]
    expected = demo.segment(scene_image, prompts, task="panoptic")
    got = runtime.segment(scene_image, prompts, task="panoptic")
    assert got.instances, "the demo model finds something for every prompt kind here"
    _assert_same_result(expected, got)


def test_runtime_follows_memory_as_pytorch_does(demo, runtime, scene_image):
    first = demo.segment(scene_image, Points.single(215, 85)).instances[0]
    follow_up = ObjectPrompt(
        points=Points(np.array([[215.0, 85.0], [250.0, 120.0]]), np.array([1, 0])),
        memory=first.memory,
    )
    _assert_same_result(
        demo.segment(scene_image, follow_up), runtime.segment(scene_image, follow_up)
    )


def test_an_export_from_before_the_runtime_says_to_export_again(demo_export, tmp_path):
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(demo_export, old)
    data = json.loads((old / "manifest.json").read_text())
    for key in ("card", "heads", "bpe_vocab"):
        data.pop(key)
    (old / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="export it again"):
        Segmenter.from_export(old)
    with pytest.raises(WeightsError, match=r"no manifest\.json"):
        Segmenter.from_export(tmp_path / "nothing")


def test_an_export_runs_on_tensorrt_or_onnxruntime_only(demo_export):
    with pytest.raises(EngineError, match="not an export folder"):
        Segmenter.from_export(demo_export, backend="torch")
    with pytest.raises(EngineError, match="unknown backend"):
        Segmenter.from_export(demo_export, backend="openvino")


def test_an_export_without_its_text_encoder_still_answers_clicks(
    demo_export, scene_image, tmp_path
):
    import json
    import shutil

    folder = tmp_path / "no_text"
    shutil.copytree(demo_export, folder)
    data = json.loads((folder / "manifest.json").read_text())
    (folder / data.pop("text_encoder")).unlink()
    (folder / "manifest.json").write_text(json.dumps(data))
    runtime = Segmenter.from_export(folder, backend="onnxruntime")
    assert runtime.segment(scene_image, Points.single(215, 85)).instances
    with pytest.raises(PromptError, match="exported without its text encoder"):
        runtime.segment(scene_image, ReferringText("the red circle"))


def test_the_segment_command_and_the_node_take_an_export_folder(demo_export, scene_image, tmp_path):
    import cv2

    from seem_ros.cli import main
    from seem_ros.ros.params import NodeParams
    from seem_ros.ros.pipeline import load_segmenter_for

    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), cv2.cvtColor(scene_image, cv2.COLOR_RGB2BGR))
    args = ["segment", str(image), "--model", str(demo_export), "--classes", "circle; square"]
    assert main([*args, "--point", "215,85", "--out", str(tmp_path / "o.png")]) == 0
    segmenter = load_segmenter_for(NodeParams(model_path=str(demo_export), backend="auto"))
    assert segmenter.model is None and segmenter.engine.name == "onnxruntime"
    with pytest.raises(EngineError, match="not an export folder"):
        load_segmenter_for(NodeParams(model_path=str(demo_export), backend="torch"))


# ----------------------------------------------------------------------------- official models
@pytest.fixture(scope="module")
def official() -> Segmenter:
    return small_official_segmenter()


@pytest.fixture(scope="module")
def official_image() -> np.ndarray:
    return noise_image(96, 128)


@pytest.fixture(scope="module")
def official_runtime(official, official_image, tmp_path_factory) -> Segmenter:
    folder = tmp_path_factory.mktemp("official_export")
    input_hw = official.transform_for(*official_image.shape[:2]).input_hw
    export_model(official.model, official.card, folder, group_counts=(2,), input_hw=input_hw)
    return Segmenter.from_export(folder, backend="onnxruntime")


def test_official_text_and_templated_class_embeddings_equal_pytorchs(official, official_runtime):
    names = ["person", "wall-other-merged", "door handle"]
    np.testing.assert_allclose(
        official_runtime.class_embeddings(names), official.class_embeddings(names), atol=1e-5
    )
    texts = ["a dog", "the <|endoftext|> red thing"]
    np.testing.assert_allclose(
        official_runtime.text_embeddings(texts), official.text_embeddings(texts), atol=1e-5
    )
    for text in texts:
        tokens, sentence = official_runtime.phrase_embedding(text)
        expected_tokens, expected_sentence = official.phrase_embedding(text)
        assert tokens.shape == expected_tokens.shape
        np.testing.assert_allclose(tokens, expected_tokens, atol=1e-5)
        np.testing.assert_allclose(sentence, expected_sentence, atol=1e-5)


def test_official_class_scores_equal_the_language_encoders(official, official_runtime):
    embeds = np.random.default_rng(2).standard_normal((8, 32)).astype(np.float32)
    classes = ["cat", "dog"]
    np.testing.assert_allclose(
        official_runtime.classify(embeds, classes), official.classify(embeds, classes), atol=1e-4
    )


def test_official_reference_tokens_equal_pytorchs_for_a_frame_sized_reference(
    official, official_runtime, official_image
):
    region = ReferenceRegion(official_image.copy(), _disc(official_image.shape[:2], (60, 40), 15))
    expected, got = official.official_reference(region), official_runtime.official_reference(region)
    np.testing.assert_allclose(got.tokens, expected.tokens, atol=1e-4)
    np.testing.assert_allclose(got.positive_mean, expected.positive_mean, atol=1e-4)


def test_official_reference_crops_are_fitted_into_the_exported_input(
    official, official_runtime, official_image
):
    crop = ReferenceRegion(official_image[10:70, 20:90].copy(), _disc((60, 70), (35, 30), 15))
    got = official_runtime.official_reference(crop)
    expected = official.official_reference(crop)
    assert got.tokens.shape[0] == 3 and got.tokens.shape[2] == expected.tokens.shape[2]
    assert np.isfinite(got.tokens).all() and np.isfinite(got.positive_mean).all()


@pytest.mark.parametrize("kind", ["refer", "points", "box", "reference", "several"])
def test_official_runtime_segments_as_pytorch_does(
    official, official_runtime, official_image, kind
):
    hw = official_image.shape[:2]
    prompts = {
        "refer": [ReferringText("the red thing")],
        "points": [Points(np.array([[60.0, 40.0], [20.0, 80.0]]), np.array([1, 0]))],
        "box": [Box(30, 20, 90, 70)],
        "reference": [
            ObjectPrompt(reference=ReferenceRegion(official_image.copy(), _disc(hw, (60, 40), 15)))
        ],
        "several": [Points.single(60, 40), ReferringText("the red thing")],
    }[kind]
    _assert_same_result(
        official.segment(official_image, prompts), official_runtime.segment(official_image, prompts)
    )


# ----------------------------------------------------------------------------- no torch
BLOCK_TORCH = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "open_clip", "timm", "onnx"}:
            raise ImportError(f"{name} is not installed (blocked)")
sys.meta_path.insert(0, Blocker())
"""


def test_the_runtime_modules_import_without_torch_open_clip_or_onnx():
    modules = [
        "seem_ros.segmenter",
        "seem_ros.engine.onnxruntime_engine",
        "seem_ros.engine.tensorrt_engine",
        "seem_ros.engine.selection",
        "seem_ros.runtime.exported_heads",
        "seem_ros.ros.node",
        "seem_ros.ros.node_core",
        "seem_ros.ros.pipeline",
        "seem_ros.tracking",
        "seem_ros.model_zoo",
    ]
    code = BLOCK_TORCH + "".join(f"import {m}\n" for m in modules)
    code += "from seem_ros.cli import build_parser\nbuild_parser()\n"
    code += "assert not {'torch', 'open_clip', 'onnx'} & set(sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
