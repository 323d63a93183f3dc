"""``seem-ros segment``: the overlay and JSON come out, bad input exits with code 2."""

from __future__ import annotations

import json
from pathlib import Path

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


@pytest.fixture()
def no_model_load(monkeypatch):
    """Fails the test if the command loads a model (argument errors must come first)."""
    import seem_ros.model_zoo as zoo

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(zoo, "load_segmenter", refuse)


def segment(*argv) -> int:
    return main(["segment", *(str(a) for a in argv)])


def test_a_threshold_outside_0_to_1_is_refused(tmp_path, image_file, capsys, no_model_load):
    with pytest.raises(SystemExit) as exit_info:
        segment(image_file, "--threshold", "5", "--out", tmp_path / "o.png")
    assert exit_info.value.code == 2
    assert "give a number from 0 to 1" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["overlay", "overlay.xyz"])
def test_an_out_path_opencv_cannot_write_is_refused_first(
    tmp_path, image_file, caplog, no_model_load, name
):
    assert segment(image_file, "--point", "5,5", "--out", tmp_path / name) == 2
    assert "OpenCV cannot write" in caplog.text and "(.png, .jpg)" in caplog.text
    assert not (tmp_path / name).exists()


def test_a_missing_image_is_our_error_alone(tmp_path, capfd, caplog, no_model_load):
    assert segment(tmp_path / "none.png", "--out", tmp_path / "o.png") == 2
    assert f"image not found: {tmp_path / 'none.png'}" in caplog.text
    assert "WARN" not in capfd.readouterr().err  # no OpenCV warning line before ours


def test_a_file_that_is_not_an_image_is_our_error(tmp_path, capfd, caplog, untrained_model):
    (tmp_path / "notes.png").write_text("not an image")
    code = segment(tmp_path / "notes.png", "--model", untrained_model, "--out", tmp_path / "o.png")
    assert code == 2
    assert "cannot read image" in caplog.text and "WARN" not in capfd.readouterr().err


def test_a_negative_only_click_warns_that_nothing_says_which_object(
    tmp_path, image_file, untrained_model, caplog
):
    code = segment(
        image_file, "--model", untrained_model, "--point", "80,90,0", "--out", tmp_path / "o.png"
    )
    assert code == 0
    assert "only negative clicks" in caplog.text
    assert any(r.levelname == "WARNING" for r in caplog.records if "negative" in r.message)


def test_a_referring_phrase_not_found_is_reported_as_not_found(
    tmp_path, image_file, untrained_model, monkeypatch, capsys
):
    """An empty prompted mask is not printed as an instance of area 0."""
    from seem_ros.results import Instance, SegmentationResult
    from seem_ros.segmenter import Segmenter

    def nothing_found(self, image, prompts, *, task="instance"):
        empty = Instance(
            np.zeros(image.shape[:2], bool), "the red mug", 0.08, "prompt", object_index=0
        )
        return SegmentationResult([empty], np.zeros(image.shape[:2], np.uint16), task)

    monkeypatch.setattr(Segmenter, "segment", nothing_found)
    report = tmp_path / "r.json"
    code = segment(
        image_file, "--model", untrained_model, "--refer", "the red mug",
        "--out", tmp_path / "o.png", "--json", report,
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "the red mug" in out and "NOT FOUND" in out and "area 0" not in out
    (instance,) = json.loads(report.read_text())["instances"]
    assert instance["found"] is False


def test_several_images_and_folders_share_one_model_load(
    tmp_path, image_file, untrained_model, monkeypatch
):
    import seem_ros.model_zoo as zoo

    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(folder / name), cv2.imread(str(image_file)))
    (folder / "notes.txt").write_text("not an image")
    loads = []
    real = zoo.load_segmenter
    monkeypatch.setattr(zoo, "load_segmenter", lambda *a, **k: loads.append(k) or real(*a, **k))
    out, report = tmp_path / "overlays", tmp_path / "all.json"
    code = segment(
        image_file, folder, "--model", untrained_model, "--point", "80,90",
        "--device", "cpu", "--out", out, "--json", report, "--no-progress",
    )  # fmt: skip
    assert code == 0
    assert len(loads) == 1 and loads[0]["device"] == "cpu"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "scene.png"]
    data = json.loads(report.read_text())
    assert [Path(r["image"]).name for r in data["images"]] == ["scene.png", "a.jpg", "b.png"]
    assert data["model"]["trained"] is False


def test_several_images_show_a_progress_bar(tmp_path, image_file, untrained_model, capsys):
    second = tmp_path / "second.png"
    second.write_bytes(image_file.read_bytes())
    code = segment(
        image_file, second, "--model", untrained_model, "--point", "9,9", "--out", tmp_path / "o"
    )
    assert code == 0
    assert "images: 100%" in capsys.readouterr().err


def test_one_bad_image_among_several_still_writes_the_others(
    tmp_path, image_file, untrained_model, caplog
):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((40, 40, 3), np.uint8))
    code = segment(
        image_file, small, "--model", untrained_model, "--point", "200,80",
        "--out", tmp_path / "out", "--no-progress",
    )  # fmt: skip
    assert code == 2
    assert (tmp_path / "out" / "scene.png").is_file()
    assert not (tmp_path / "out" / "small.png").exists()
    assert "small.png" in caplog.text and "Points" in caplog.text


@pytest.mark.parametrize("device", ["tpu", "cuda:not-a-number"])
def test_an_unknown_device_is_refused(tmp_path, image_file, capsys, no_model_load, device):
    with pytest.raises(SystemExit):
        segment(image_file, "--device", device, "--out", tmp_path / "o.png")
    assert "--device" in capsys.readouterr().err


def test_cuda_on_a_machine_without_it_is_refused(tmp_path, image_file, capsys, no_model_load):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        segment(image_file, "--device", "cuda", "--out", tmp_path / "o.png")
    assert "CUDA is not available" in capsys.readouterr().err
