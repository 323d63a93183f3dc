"""Label -> distill -> deploy, end to end with real Ray, real training steps, real ONNX Runtime:
our demo teacher on procedural frames, and an official-architecture Focal-T teacher (random
weights of the official shapes, small input) on the shipped sample bag."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from ros_payloads import image_cdr, point_stamped_cdr, string_cdr

from seem_ros.cli import main
from seem_ros.model.build import build_model, file_sha256, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.model.official.manifest import random_official_state_dict
from seem_ros.prompts import ClassNames, ObjectPrompt, Points
from seem_ros.ros import messages
from seem_ros.ros.node_core import NodeCore
from seem_ros.ros.params import NodeParams
from seem_ros.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "models" / "seem_tiny_demo.safetensors"
SAMPLE_BAG = REPO / "seem_ros" / "data" / "samples" / "sample_scene.mcap"
SAMPLE_TOPIC = "/camera/image_raw/compressed"


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for every labelling run here (the label command reuses it)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo_shards(tmp_path_factory, ray_session) -> Path:
    from seem_ros.data.datasets import SceneDataset

    folder = tmp_path_factory.mktemp("frames")
    scenes = SceneDataset("val", 10)
    for index in range(10):
        image = cv2.cvtColor(scenes[index].image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"frame_{index:02d}.png"), image)
    out = tmp_path_factory.mktemp("demo") / "shards"
    code = main(
        [
            "label",
            "--teacher", str(DEMO),
            "--frames", str(folder),
            "--out", str(out),
            "--phrases", "the red circle; the floor; the leftmost star",
            "--shard-size", "4",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    return out


def distill(shards: Path, out: Path, steps: int, *extra: str) -> int:
    return main(
        [
            "distill",
            "--shards", str(shards),
            "--out", str(out),
            "--steps", str(steps),
            "--batch", "2",
            "--eval-every", "2",
            "--eval-frames", "2",
            "--checkpoint-every", "2",
            "--held-out", "0.2",
            "--threads", "1",
            "--warmup-steps", "1",  # resumes past the warm-up, in the cosine decay
            *extra,
        ]
    )  # fmt: skip


def test_a_student_distils_checkpoints_resumes_and_deploys(demo_shards, tmp_path):
    out = tmp_path / "student.safetensors"
    assert distill(demo_shards, out, 3) == 0
    run = tmp_path / "student.run"
    assert (run / "checkpoint.pt").is_file()
    agreements = [json.loads(line) for line in (run / "agreement.jsonl").read_text().splitlines()]
    assert [a["step"] for a in agreements] == [2, 3]
    assert 0.0 <= agreements[-1]["prompted_miou"] <= 1.0
    first_weights = out.read_bytes()
    # a second run with more steps continues from the checkpoint
    assert distill(demo_shards, out, 5) == 0
    losses = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in losses] == [3, 5]
    assert out.read_bytes() != first_weights

    student = Segmenter.from_pretrained(out)
    card = student.card
    assert card.provenance["distilled_from"]["sha256"] == file_sha256(DEMO)
    assert card.provenance["steps"] == 5
    assert card.vocabulary == Segmenter.from_pretrained(DEMO).card.vocabulary
    assert student.model.config.name == "student_nano"
    image = np.full((120, 160, 3), 80, np.uint8)
    cv2.circle(image, (60, 60), 20, (220, 30, 30), -1)
    result = student.segment(
        image,
        [
            ClassNames(("circle", "floor")),
            ObjectPrompt(points=Points.single(60, 60)),
            ObjectPrompt(text="the red circle"),
        ],
    )
    assert sum(i.source == "prompt" for i in result.instances) == 2

    # ONNX export, then the same answers from ONNX Runtime
    from seem_ros.engine.selection import load_segmenter_with_backend

    assert (
        main(["export", "--model", str(out), "--out", str(tmp_path / "onnx"), "--groups", "1,10"])
        == 0
    )
    on_ort = load_segmenter_with_backend(out, backend="onnxruntime", cache_dir=tmp_path / "cache")
    prompt = ObjectPrompt(points=Points.single(60, 60))
    torch_mask = student.segment(image, prompt).instances[0].mask
    ort_mask = on_ort.segment(image, prompt).instances[0].mask
    union = (torch_mask | ort_mask).sum()
    assert union == 0 or (torch_mask & ort_mask).sum() / union > 0.98


def test_a_mismatched_teacher_is_refused(demo_shards, tmp_path):
    other = tmp_path / "other.safetensors"
    model = build_model("tiny", seed=1)
    save_model(model, other, ModelCard(config=model.config))
    assert distill(demo_shards, tmp_path / "s.safetensors", 1, "--teacher", str(other)) == 2


@pytest.fixture(scope="module")
def official_teacher(tmp_path_factory) -> Path:
    """The official Focal-T architecture with random weights of the official shapes, at a
    small input (short side 128) so the test stays quick."""
    config = load_config("seem_focalt_v1")
    config.image_size = 128
    model = build_model(config, seed=0)
    model.load_state_dict(random_official_state_dict("seem_focalt_v1", seed=0), strict=False)
    path = tmp_path_factory.mktemp("official") / "focalt_random.safetensors"
    card = ModelCard(
        config=model.config,
        vocabulary=["person", "chair", "wall-other-merged"],
        stuff_classes=["wall-other-merged"],
    )
    save_model(model, path, card, dtype=torch.float16)
    return path


def test_the_official_path_labels_a_bag_distils_and_deploys(
    official_teacher, tmp_path, ray_session
):
    shards = tmp_path / "shards"
    code = main(
        [
            "label",
            "--teacher", str(official_teacher),
            "--frames", str(SAMPLE_BAG),
            "--topic", SAMPLE_TOPIC,
            "--out", str(shards),
            "--max-frames", "3",
            "--phrases", "the person",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["counts"]["frames"] == 3
    assert manifest["teacher"]["sha256"] == file_sha256(official_teacher)
    out = tmp_path / "student.safetensors"
    assert distill(shards, out, 2, "--held-out", "0.34") == 0

    student = Segmenter.from_pretrained(out)
    assert student.model.official_text  # the teacher's language encoder, frozen
    classes = ["person", "chair"]
    with torch.no_grad():
        teacher = Segmenter.from_pretrained(official_teacher)
        np.testing.assert_allclose(
            student.class_embeddings(classes), teacher.class_embeddings(classes), atol=1e-3
        )
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    result = student.segment(image, [ClassNames(tuple(classes)), ObjectPrompt(text="the person")])
    assert any(i.source == "prompt" for i in result.instances)

    core = NodeCore(
        student, NodeParams(backend="torch", score_threshold=0.0), lambda *_: None, threaded=False
    )
    core.handle("prompt/classes", string_cdr("person; chair"))
    core.feed("image", image_cdr(1_000))
    core.handle("prompt/point", point_stamped_cdr(40.0, 30.0, 1.0))
    outputs = {
        o.key: messages.deserialize(o.cdr, o.ros_type) for o in core.feed("image", image_cdr(2_000))
    }
    assert "detections" in outputs

    assert (
        main(["export", "--model", str(out), "--out", str(tmp_path / "onnx"), "--groups", "1"]) == 0
    )
    exported = json.loads((tmp_path / "onnx" / "manifest.json").read_text())
    assert exported["text_encoder"] == "text_encoder.onnx"
    # the export runs without the PyTorch model: class names and phrases through its text graph
    runtime = Segmenter.from_export(tmp_path / "onnx", backend="onnxruntime")
    np.testing.assert_allclose(
        runtime.class_embeddings(classes), student.class_embeddings(classes), atol=1e-4
    )
    np.testing.assert_allclose(
        runtime.text_embeddings(["the person"]), student.text_embeddings(["the person"]), atol=1e-4
    )
    exported_result = runtime.segment(
        image, [ClassNames(tuple(classes)), ObjectPrompt(text="the person")]
    )
    assert [i.label for i in exported_result.instances] == [i.label for i in result.instances]
