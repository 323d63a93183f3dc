"""``seem-ros segment``: the overlay and JSON come out, bad input exits with code 2."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seem_ros.cli import main


@pytest.fixture()
def image_file(tmp_path, scene_image):
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), cv2.cvtColor(scene_image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture()
def untrained_model(tmp_path, tiny_segmenter):
    from seem_ros.model.build import save_model

    return save_model(tiny_segmenter.model, tmp_path / "random.safetensors", tiny_segmenter.card)


def test_segment_writes_overlay_and_json(tmp_path, image_file, untrained_model):
    mask = np.zeros((240, 320), np.uint8)
    mask[40:130, 170:260] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    out, report = tmp_path / "overlay.png", tmp_path / "result.json"
    code = main(
        [
            "segment",
            str(image_file),
            "--model",
            str(untrained_model),
            "--classes",
            "circle;square",
            "--refer",
            "the blue square",
            "--point",
            "200,80",
            "--point",
            "80,90,0",
            "--box",
            "160,30,270,140",
            "--scribble",
            "170,50;250,120",
            "--mask",
            str(tmp_path / "mask.png"),
            "--ref-image",
            str(image_file),
            "--ref-mask",
            str(tmp_path / "mask.png"),
            "--out",
            str(out),
            "--json",
            str(report),
        ]
    )
    assert code == 0
    overlay = cv2.imread(str(out))
    assert overlay.shape == (240, 320, 3)
    data = json.loads(report.read_text())
    prompted = [i for i in data["instances"] if i["source"] == "prompt"]
    assert len(prompted) == 1 and prompted[0]["label"] == "the blue square"
    assert set(prompted[0]) >= {"label", "score", "box", "area"}
    assert data["model"]["trained"] is False


@pytest.mark.parametrize(
    "extra",
    [
        ["--point", "nan,3"],
        ["--point", "1,2,3,4"],
        ["--box", "5,5,5,5"],
        ["--refer", "  "],
        ["--classes", ";"],
        ["--ref-image", "x.png"],
    ],
)
def test_bad_prompts_exit_with_code_2(tmp_path, image_file, untrained_model, extra):
    code = main(
        [
            "segment",
            str(image_file),
            "--model",
            str(untrained_model),
            *extra,
            "--out",
            str(tmp_path / "o.png"),
        ]
    )
    assert code == 2


def test_missing_image_exits_with_code_2(tmp_path, untrained_model):
    assert (
        main(
            [
                "segment",
                str(tmp_path / "none.png"),
                "--model",
                str(untrained_model),
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        == 2
    )


def test_corrupt_model_exits_with_code_2(tmp_path, image_file):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    (tmp_path / "bad.json").write_text("{}")
    assert (
        main(
            [
                "segment",
                str(image_file),
                "--model",
                str(bad),
                "--point",
                "5,5",
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        == 2
    )
