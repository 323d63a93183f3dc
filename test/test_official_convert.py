"""``seem-ros convert``: official checkpoints (random weights of the official shapes) in, our
safetensors + card out; mismatched checkpoints refused with the keys that differ."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from seem_ros.cli import main
from seem_ros.model.official.convert import compare_keys, detect_config
from seem_ros.model.official.manifest import load_manifest, random_official_state_dict
from seem_ros.model.official.vocabulary import COCO_PANOPTIC_CLASSES
from seem_ros.prompts import ObjectPrompt, Points
from seem_ros.segmenter import Segmenter


@pytest.fixture(scope="module")
def official_state():
    return random_official_state_dict("seem_focalt_v1", seed=3)


@pytest.fixture(scope="module")
def converted(official_state, tmp_path_factory):
    """One full conversion (COCO class embeddings included) shared by the tests below."""
    folder = tmp_path_factory.mktemp("convert")
    source = folder / "seem_focalt_v1_random.pt"
    torch.save(official_state, source)
    out = folder / "focalt.safetensors"
    assert main(["convert", str(source), "--out", str(out)]) == 0
    return source, out


def test_the_config_is_detected_from_the_key_set(official_state):
    assert detect_config(official_state).config == "seem_focalt_v1"
    assert detect_config(official_state).ok


def test_a_converted_model_loads_with_its_card_alone(converted, official_state):
    source, out = converted
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["config"]["name"] == "seem_focalt_v1"
    assert card["provenance"]["source_file"] == source.name
    assert len(card["provenance"]["source_sha256"]) == 64
    assert "licence" in card["provenance"]
    segmenter = Segmenter.from_pretrained(out)
    state = segmenter.model.state_dict()
    for key, value in official_state.items():
        if key != "criterion.empty_weight":
            assert torch.equal(state[key], value), key
    assert segmenter.card.vocabulary == list(COCO_PANOPTIC_CLASSES)


def test_the_card_carries_the_coco_class_embeddings_the_model_would_compute(converted):
    _, out = converted
    segmenter = Segmenter.from_pretrained(out)
    stored = segmenter.card.class_embedding_cache()[tuple(COCO_PANOPTIC_CLASSES)]
    assert stored.shape == (134, 512)
    names = ["person", "dining table", "wall-other-merged"]
    with torch.inference_mode():
        fresh = segmenter.model.embed_class_names(names).numpy()
    rows = [COCO_PANOPTIC_CLASSES.index(n) for n in names]
    np.testing.assert_allclose(stored[rows], fresh[:3], atol=1e-5)
    np.testing.assert_allclose(stored[-1], fresh[-1], atol=1e-5)  # background


def test_a_converted_model_segments_a_click(converted):
    _, out = converted
    segmenter = Segmenter.from_pretrained(out)
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    result = segmenter.segment(
        image, ObjectPrompt(points=Points(np.array([[20.0, 30.0]]), np.array([1])))
    )
    assert result.instances[0].mask.shape == (64, 64)


def _write(state: dict[str, torch.Tensor], path) -> None:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def test_missing_and_unexpected_keys_are_listed_and_exit_2(official_state, tmp_path, caplog):
    state = {k: v for k, v in official_state.items() if not k.startswith("backbone.layers.3")}
    state["sem_seg_head.predictor.extra_head.weight"] = torch.zeros(2, 2)
    _write(state, tmp_path / "broken.safetensors")
    code = main(
        ["convert", str(tmp_path / "broken.safetensors"), "--out", str(tmp_path / "o.safetensors")]
    )
    assert code == 2
    assert "missing: backbone.layers.3" in caplog.text
    assert "unexpected: sem_seg_head.predictor.extra_head.weight" in caplog.text
    assert not (tmp_path / "o.safetensors").exists()


def test_misshaped_keys_name_both_shapes(official_state):
    state = dict(official_state)
    state["sem_seg_head.predictor.query_feat.weight"] = torch.zeros(100, 512)
    report = compare_keys(state, load_manifest("seem_focalt_v1"))
    assert not report.ok
    assert report.misshaped == [
        "sem_seg_head.predictor.query_feat.weight: found (100, 512), expected (101, 512)"
    ]


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, caplog):
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint")
    assert main(["convert", str(bogus), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "cannot read" in caplog.text


def test_focal_l_keys_are_recognised():
    manifest = load_manifest("seem_focall_v1")
    fake = {k: torch.empty(e.shape, device="meta") for k, e in manifest.entries.items()}
    assert detect_config(fake).config == "seem_focall_v1" and detect_config(fake).ok
