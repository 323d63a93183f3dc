"""Finding the demo model: $SEEM_ROS_MODEL first, a clear error when there is none."""

from __future__ import annotations

import pytest

from seem_ros import model_zoo
from seem_ros.model.build import save_model


def test_environment_variable_names_the_model(monkeypatch, tmp_path, tiny_segmenter):
    path = save_model(tiny_segmenter.model, tmp_path / "mine.safetensors", tiny_segmenter.card)
    monkeypatch.setenv(model_zoo.MODEL_ENV, str(path))
    assert model_zoo.default_model_path() == path
    assert model_zoo.load_segmenter().card.config.name == "tiny"


def test_no_model_anywhere_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(model_zoo.MODEL_ENV, raising=False)
    monkeypatch.setattr(model_zoo, "model_search_paths", lambda: [tmp_path / "none.safetensors"])
    with pytest.raises(FileNotFoundError, match="no model given and no demo model found"):
        model_zoo.load_segmenter()


def test_untrained_fallback_is_allowed_only_when_asked(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(model_zoo.MODEL_ENV, raising=False)
    monkeypatch.setattr(model_zoo, "model_search_paths", lambda: [tmp_path / "none.safetensors"])
    segmenter = model_zoo.load_segmenter(allow_untrained=True)
    assert not segmenter.card.trained
    assert "UNTRAINED" in caplog.text


def test_environment_variable_naming_nothing_is_an_error_not_the_demo_model(monkeypatch, tmp_path):
    monkeypatch.setenv(model_zoo.MODEL_ENV, str(tmp_path / "typo.safetensors"))
    with pytest.raises(FileNotFoundError, match=r"\$SEEM_ROS_MODEL is .*typo.safetensors"):
        model_zoo.load_segmenter()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_zoo.load_segmenter(allow_untrained=True)


def test_the_load_log_says_what_the_model_is_for(caplog):
    from seem_ros.model_zoo import DEMO_MODEL_NAME

    demo = model_zoo.Path(__file__).resolve().parent.parent / "models" / DEMO_MODEL_NAME
    with caplog.at_level("INFO"):
        model_zoo.load_segmenter(demo)
    assert "procedural world of coloured shapes" in caplog.text
    assert "not for real photos" in caplog.text
    assert "trained: True" not in caplog.text


def test_an_untrained_model_is_described_as_such(tiny_segmenter):
    assert "UNTRAINED" in model_zoo.describe(tiny_segmenter.card)


def test_a_distilled_student_is_described_by_its_teacher(tiny_segmenter):
    from dataclasses import replace

    teacher = {"name": "seem_focalt_v1.safetensors", "sha256": "ab" * 32, "config": "x"}
    card = replace(tiny_segmenter.card, trained=True, provenance={"distilled_from": teacher})
    words = model_zoo.describe(card)
    assert "distilled from seem_focalt_v1.safetensors" in words and "abababababab" in words
