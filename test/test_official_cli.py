"""The command line takes an official-family model file like any other: ``segment`` (every
prompt kind), ``bag`` (the shipped sample bag, tracking with memory) and ``export
--frame-size``. A small official config keeps this fast; the full Focal-T path is in
test_official_convert.py."""

from __future__ import annotations

import json

import cv2
import pytest
from official_models import noise_image, small_official_segmenter

from seem_ros.cli import main
from seem_ros.engine.onnx_export import ExportManifest
from seem_ros.model.build import save_model
from seem_ros.ros.bag_processing import SAMPLE_BAG


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    segmenter = small_official_segmenter()
    folder = tmp_path_factory.mktemp("official_model")
    return save_model(segmenter.model, folder / "official_small.safetensors", segmenter.card)


def test_segment_runs_an_official_model_with_every_prompt_kind(tmp_path, model_file):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), noise_image(120, 160))
    out, report = tmp_path / "overlay.png", tmp_path / "result.json"
    code = main(
        [
            "segment", str(image), "--model", str(model_file), "--classes", "mug; person",
            "--refer", "the mug", "--point", "40,30", "--point", "100,80,0",
            "--box", "20,20,90,70", "--scribble", "30,40;60,50",
            "--out", str(out), "--json", str(report),
        ]
    )  # fmt: skip
    assert code == 0
    assert out.is_file()
    assert cv2.imread(str(out)).shape[:2] == (120, 160)
    assert json.loads(report.read_text())


def test_bag_runs_an_official_model_over_the_sample_bag(tmp_path, model_file, capsys):
    code = main(
        [
            "bag", str(SAMPLE_BAG), str(tmp_path / "out"), "--model", str(model_file),
            "--param", "backend=torch", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    assert "frames" in capsys.readouterr().out


def test_export_makes_graphs_for_the_cameras_frame_size(tmp_path, model_file):
    code = main(
        [
            "export", "--model", str(model_file), "--out", str(tmp_path / "graphs"),
            "--groups", "1", "--frame-size", "160x120",
        ]
    )  # fmt: skip
    assert code == 0
    manifest = ExportManifest.load(tmp_path / "graphs")
    assert manifest.family == "official_v1"
    assert manifest.input_hw == (64, 96)  # short side 64, aspect kept, padded to 32
