"""``seem-ros eval`` and ``seem-ros demo`` run end to end on a handful of scenes."""

from __future__ import annotations

import json

import pytest

from seem_ros.cli import main
from seem_ros.eval.benchmark import Benchmark, BenchmarkSize, flatten

REQUIRED_KEYS = {
    "interactive.noc85",
    "interactive.noc90",
    "interactive.miou_1click",
    "interactive.miou_5click",
    "referring.miou",
    "referring.ciou",
    "generic.pq",
    "generic.miou",
    "video.jf",
    "video.jf_no_memory",
    "openvocab.miou",
    "composition.miou",
    "referring.miou_things",
    "referring.miou_stuff",
    "video_hard.jf",
    "video_hard.jf_no_memory",
    "paraphrase.miou",
    "paraphrase.miou_original",
}


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory, tiny_segmenter):
    from seem_ros.model.build import save_model

    return save_model(
        tiny_segmenter.model,
        tmp_path_factory.mktemp("model") / "random.safetensors",
        tiny_segmenter.card,
    )


def test_benchmark_refuses_the_training_split(tiny_segmenter):
    with pytest.raises(ValueError, match="never on train"):
        Benchmark(tiny_segmenter, split="train")


def test_eval_writes_every_required_key(tmp_path, random_model_path):
    out = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model",
            str(random_model_path),
            "--split",
            "val",
            "--scenes",
            "2",
            "--clips",
            "1",
            "--clip-frames",
            "3",
            "--cases",
            "2",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) >= REQUIRED_KEYS
    assert data["interactive"]["noc85"] == data["interactive.noc85"]
    assert 1 <= data["interactive.noc90"] <= 20
    assert 0.0 <= data["generic.pq"] <= 1.0 and 0.0 <= data["video.jf"] <= 1.0


def test_flatten_keeps_numbers_only():
    report = {"split": "test", "interactive": {"noc85": 2.0, "note": "x"}, "sizes": {"scenes": 3}}
    assert flatten(report) == {"interactive.noc85": 2.0}


def test_benchmark_is_deterministic(tiny_segmenter):
    size = BenchmarkSize(scenes=1, objects_per_scene=1, phrases_per_scene=1, cases=1, max_clicks=2)
    first = Benchmark(tiny_segmenter, split="val", size=size, progress=False).run(
        ("interactive", "referring")
    )
    second = Benchmark(tiny_segmenter, split="val", size=size, progress=False).run(
        ("interactive", "referring")
    )
    assert flatten(first) == flatten(second)


def test_eval_with_missing_model_exits_2(tmp_path):
    assert main(["eval", "--model", str(tmp_path / "none.safetensors"), "--no-progress"]) == 2


def test_demo_writes_overlays_and_summary(tmp_path, random_model_path):
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(random_model_path), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["trained"] is False
    assert (out / "summary.png").is_file() and (out / "scene0_panoptic.png").is_file()
    assert len(list((out / "clip").glob("frame*.png"))) == summary["clip"]["frames"]


def test_release_writes_a_half_precision_model_whose_card_holds_its_benchmark(
    tmp_path, random_model_path
):
    from seem_ros.model.build import load_model

    out = tmp_path / "shipped.safetensors"
    code = main(
        [
            "release",
            "--from",
            str(random_model_path),
            "--out",
            str(out),
            "--split",
            "val",
            "--scenes",
            "1",
            "--clips",
            "1",
            "--cases",
            "1",
            "--frame-size",
            "96",
            "--note",
            "test",
        ]
    )
    assert code == 0
    _, card = load_model(out)
    assert card.provenance["weights_dtype"] == "float16" and card.provenance["note"] == "test"
    assert card.metrics["split"] == "val" and "interactive.noc85" in card.metrics
    assert card.metrics["frame_size"] == 96  # a student measured on its teacher's frames
    assert "robustness.photo.pq" in card.metrics and "robustness.max_drop.camera" in card.metrics
    assert out.stat().st_size < 0.6 * random_model_path.stat().st_size
