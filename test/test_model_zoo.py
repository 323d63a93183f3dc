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
    monkeypatch.setattr(model_zoo, "model_search_paths", lambda: [tmp_path / "none.safetensors"])
    with pytest.raises(FileNotFoundError, match="no model given and no demo model found"):
        model_zoo.load_segmenter()


def test_untrained_fallback_is_allowed_only_when_asked(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(model_zoo, "model_search_paths", lambda: [tmp_path / "none.safetensors"])
    segmenter = model_zoo.load_segmenter(allow_untrained=True)
    assert not segmenter.card.trained
    assert "UNTRAINED" in caplog.text
