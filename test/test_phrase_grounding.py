"""Referring phrases answered by the generic query they point at (seem_ros/phrase_grounding.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shipped_model_scores import iou, val_thing_phrases

from seem_ros.data import SceneDataset
from seem_ros.model_zoo import DEMO_MODEL_NAME
from seem_ros.phrase_grounding import grounded_query
from seem_ros.postprocess import prompted_masks
from seem_ros.prompts import ObjectPrompt, Points, PromptSet
from seem_ros.segmenter import Segmenter

DEMO = Path(__file__).resolve().parent.parent / "models" / DEMO_MODEL_NAME


def _logits(*boxes: tuple[int, int, int, int], size: int = 20) -> np.ndarray:
    """(len(boxes), size, size) logits: +1 inside each (top, left, bottom, right) box, -1 out."""
    out = -np.ones((len(boxes), size, size), np.float32)
    for index, (top, left, bottom, right) in enumerate(boxes):
        out[index, top:bottom, left:right] = 1.0
    return out


def _unit(*rows: list[float]) -> np.ndarray:
    array = np.array(rows, np.float32)
    return array / np.linalg.norm(array, axis=-1, keepdims=True)


def test_with_equal_similarities_the_query_overlapping_the_group_mask_wins():
    group = _logits((2, 2, 10, 10))[0]
    queries = _logits((12, 12, 18, 18), (3, 3, 10, 10), (0, 0, 20, 20))
    embeds = _unit([1, 0], [1, 0], [1, 0])
    assert grounded_query(group, queries, _unit([1, 0])[0], embeds) == 1


def test_the_phrase_similarity_can_outweigh_a_larger_overlap():
    """The group mask half-covers the wrong shape; the right shape, which it barely touches,
    is the one the phrase names (the "the circle" failure the grounding exists for)."""
    group = _logits((0, 0, 10, 10))[0]
    queries = _logits((0, 0, 10, 10), (8, 8, 18, 18))
    embeds = _unit([0, 1], [1, 0])
    phrase = _unit([1, 0])[0]
    assert grounded_query(group, queries, phrase, embeds) == 1
    assert grounded_query(group, queries, phrase, embeds, weight=0.0) == 0


def test_nothing_found_stays_nothing():
    phrase = _unit([1, 0])[0]
    queries = _logits((0, 0, 10, 10))
    empty_group = -np.ones((20, 20), np.float32)
    assert grounded_query(empty_group, queries, phrase, _unit([1, 0])) is None
    group = _logits((0, 0, 10, 10))[0]
    assert grounded_query(group, queries[:0], phrase, np.zeros((0, 2), np.float32)) is None
    # the best-scoring query draws nothing: keep the group's mask rather than an empty one
    empty_query = -np.ones((1, 20, 20), np.float32)
    assert grounded_query(group, empty_query, phrase, _unit([1, 0])) is None
    with pytest.raises(ValueError, match="non-negative"):
        grounded_query(group, queries, phrase, _unit([1, 0]), weight=-1.0)


@pytest.fixture(scope="module")
def demo() -> Segmenter:
    return Segmenter.from_pretrained(DEMO)


def test_a_text_only_prompt_gets_its_grounded_querys_mask_and_remembers_it(demo):
    scene = SceneDataset("val", 1, size=(256, 256))[0]
    phrase = next(p.text for p in scene.phrases if scene.segment(p.target_id).is_thing)
    encoded = demo.encode_image(scene.image)
    prompts = PromptSet(objects=[ObjectPrompt(text=phrase)])
    outputs = demo.decode_outputs(encoded, prompts)
    query = grounded_query(
        outputs["group_masks"][0, 0],
        outputs["object_masks"][0],
        demo.text_embeddings([phrase])[0],
        outputs["object_embeds"][0],
        learned_scores=outputs["group_grounding"][0, 0] if "group_grounding" in outputs else None,
    )
    assert query is not None
    expected = prompted_masks(outputs["object_masks"][0, query : query + 1], encoded.transform)[0]
    instance = demo.decode(encoded, prompts).instances[0]
    assert np.array_equal(instance.mask, expected)
    assert instance.memory is not None and np.array_equal(instance.memory.mask, expected)
    demo.phrase_grounding = False
    try:
        ungrounded = demo.decode(encoded, prompts).instances[0]
    finally:
        demo.phrase_grounding = True
    group = prompted_masks(outputs["group_masks"][0, :1], encoded.transform)[0]
    assert np.array_equal(ungrounded.mask, group)


def test_text_with_a_click_is_left_to_the_group(demo):
    """Only text-only prompts are grounded: a click already says which object."""
    scene = SceneDataset("val", 1, size=(256, 256))[0]
    target = scene.thing_segments[0]
    rows, cols = np.nonzero(target.mask)
    click = Points(np.array([[cols.mean() + 0.5, rows.mean() + 0.5]]), np.array([1]))
    prompt = ObjectPrompt(text=f"the {target.category}", points=click)
    encoded = demo.encode_image(scene.image)
    grounded = demo.decode(encoded, prompt).instances[0].mask
    demo.phrase_grounding = False
    try:
        ungrounded = demo.decode(encoded, prompt).instances[0].mask
    finally:
        demo.phrase_grounding = True
    assert np.array_equal(grounded, ungrounded)


def test_grounding_helps_the_shipped_model_on_val_phrases_naming_things(demo):
    ious: dict[bool, list[float]] = {True: [], False: []}
    for item in val_thing_phrases(demo):
        for grounding in (True, False):
            demo.phrase_grounding = grounding
            try:
                result = demo.decode(item.encoded, item.prompts)
            finally:
                demo.phrase_grounding = True
            for slot, instance in enumerate(result.instances):
                ious[grounding].append(iou(item.truth(slot), instance.mask))
    assert len(ious[True]) > 100
    assert np.mean(ious[True]) > np.mean(ious[False]) + 0.02
