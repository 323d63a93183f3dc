"""The query-grounding head (seem_ros/model/query_grounding.py), its loss and its use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from random_weights import random_model
from shipped_model_scores import iou, val_thing_phrases
from training_runs import short_run

from seem_ros.data import class_names
from seem_ros.model.build import build_model, load_into, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import DecoderConfig, load_config
from seem_ros.model.query_grounding import QueryGrounding, mask_geometry, soft_overlap
from seem_ros.model_zoo import DEMO_MODEL_NAME
from seem_ros.phrase_grounding import grounded_query
from seem_ros.postprocess import prompted_masks
from seem_ros.prompts import ObjectPrompt, Points, PromptSet
from seem_ros.segmenter import Segmenter
from seem_ros.train.config import TrainConfig
from seem_ros.train.episodes import EpisodeMix, EpisodeSampler, GroupSpec
from seem_ros.train.losses import LossWeights, grounding_loss
from seem_ros.train.step import StepRunner, is_phrase_only
from seem_ros.train.trainer import Trainer

DEMO = Path(__file__).resolve().parent.parent / "models" / DEMO_MODEL_NAME
PHRASES_ONLY = EpisodeMix(
    scenes=1,
    compositions=0,
    clip_pairs=0,
    groups_per_scene=3,
    max_rounds=0,
    kind_weights=(("text", 1.0),),
)
"""Episodes of phrase-only objects: what trains the query-grounding head."""


def _box_logits(*boxes: tuple[int, int, int, int], size: int = 16) -> torch.Tensor:
    """(1, len(boxes), size, size): +8 inside each (top, left, bottom, right) box, -8 out."""
    out = -8.0 * torch.ones(1, len(boxes), size, size)
    for index, (top, left, bottom, right) in enumerate(boxes):
        out[0, index, top:bottom, left:right] = 8.0
    return out


def test_geometry_is_the_masks_centroid_spread_and_size():
    logits = _box_logits((0, 0, 4, 8), (8, 12, 16, 16))
    geometry = mask_geometry(logits)[0]
    cx, cy, spread_x, spread_y, size, peak = geometry[0].tolist()
    assert cx == pytest.approx(4 / 16, abs=0.01) and cy == pytest.approx(2 / 16, abs=0.01)
    assert spread_x > spread_y  # 8 columns wide, 4 rows tall
    assert size == pytest.approx((32 / 256) ** 0.5, abs=0.01) and peak > 0.99
    assert geometry[1, 0] == pytest.approx(14 / 16, abs=0.01)


def test_a_fresh_head_is_the_soft_hand_rule():
    head = QueryGrounding(dim=8, embed_dim=4, hidden=6)
    group = _box_logits((0, 0, 8, 8))
    objects = _box_logits((0, 0, 8, 8), (8, 8, 16, 16), (0, 0, 16, 16))
    phrase = torch.nn.functional.normalize(torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]), dim=-1)
    embeds = torch.nn.functional.normalize(torch.rand(1, 3, 4), dim=-1)
    scores = head(torch.rand(1, 1, 8), torch.rand(1, 3, 8), group, objects, phrase, embeds)
    expected = soft_overlap(group, objects) + torch.einsum("bge,bne->bgn", phrase, embeds)
    assert torch.allclose(scores, expected, atol=1e-6)
    assert scores[0, 0, 0] > scores[0, 0, 2] > scores[0, 0, 1] - 1.0  # exact overlap first


def test_the_head_can_learn_an_extreme_from_geometry():
    """ "The leftmost": an argmax over candidates of minus their x. A few steps of the bilinear
    term on positions alone learn it (the hand rule, by overlap, cannot tell)."""
    torch.manual_seed(0)
    head = QueryGrounding(dim=4, embed_dim=2, hidden=8)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.02)
    leftmost_phrase = torch.tensor([[[1.0, 0.0]]])
    embeds = torch.tensor([[[0.0, 1.0]] * 3])
    group = _box_logits((0, 0, 16, 16))  # covers every candidate alike
    for _ in range(150):
        lefts = torch.randperm(12)[:3].tolist()
        objects = _box_logits(*[(4, left, 8, left + 3) for left in lefts])
        scores = head(
            torch.ones(1, 1, 4), torch.zeros(1, 3, 4), group, objects, leftmost_phrase, embeds
        )
        target = torch.tensor([int(np.argmin(lefts))])
        loss = torch.nn.functional.cross_entropy(scores[0], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    objects = _box_logits((4, 9, 8, 12), (4, 1, 8, 4), (4, 5, 8, 8))
    scores = head(
        torch.ones(1, 1, 4), torch.zeros(1, 3, 4), group, objects, leftmost_phrase, embeds
    )
    assert int(scores[0, 0].argmax()) == 1


def test_the_head_reads_the_decoder_without_pulling_on_it():
    head = QueryGrounding(dim=8, embed_dim=4, hidden=6)
    torch.nn.init.normal_(head.query_side.net[-1].weight)
    tokens = torch.rand(1, 3, 8, requires_grad=True)
    logits = _box_logits((0, 0, 8, 8), (8, 8, 16, 16), (0, 0, 16, 16)).requires_grad_()
    scores = head(
        tokens[:, :1], tokens, logits[:, :1], logits, torch.rand(1, 1, 4), torch.rand(1, 3, 4)
    )
    scores.sum().backward()
    assert tokens.grad is None and logits.grad is None
    assert head.query_side.net[-1].weight.grad is not None


def test_the_loss_teaches_the_query_covering_the_object_best():
    objects = _box_logits((0, 0, 8, 8), (0, 0, 8, 4), (8, 8, 16, 16))[0]
    target = torch.zeros(16, 16)
    target[0:8, 0:8] = 1.0
    scores = torch.tensor([[0.0, 5.0, 0.0]], requires_grad=True)
    loss = grounding_loss(scores, objects[None], target[None], LossWeights())["g_ground"]
    loss.backward()
    assert scores.grad[0, 0] < 0 < scores.grad[0, 1]  # towards query 0, away from query 1
    # no query covers the object at IoU 0.5: nothing to teach
    far = torch.zeros(1, 16, 16)
    far[0, 12:16, 0:4] = 1.0
    assert (
        float(grounding_loss(scores.detach(), objects[None], far, LossWeights())["g_ground"]) == 0.0
    )
    # a query that draws nothing is never the answer: it gets no probability
    empty = torch.cat([objects, -8.0 * torch.ones(1, 16, 16)])[None]
    big = torch.tensor([[0.0, 0.0, 0.0, 50.0]])
    assert float(grounding_loss(big, empty, target[None], LossWeights())["g_ground"]) < 1.2


def test_only_phrase_only_objects_train_the_head():
    base = dict(image=0, kind="text", gt_mask=np.zeros((8, 8), bool), label=0)
    assert is_phrase_only(GroupSpec(**base, text="the red ring"))
    assert not is_phrase_only(GroupSpec(**base))
    clicked = ObjectPrompt(
        text="the red ring", points=Points(np.array([[1.0, 1.0]]), np.array([1]))
    )
    assert not is_phrase_only(GroupSpec(**base, text="the red ring", prompt=clicked))
    assert is_phrase_only(
        GroupSpec(**base, text="the red ring", prompt=ObjectPrompt(text="the red ring"))
    )
    assert not is_phrase_only(GroupSpec(**base, text="the red ring", memory_from=0))


def test_the_step_trains_the_head_on_phrases():
    model = build_model("tiny", seed=0).train()
    vocabulary = list(class_names())
    mix = replace(PHRASES_ONLY, scenes=2)
    sampler = EpisodeSampler(vocabulary=vocabulary, image_size=256, seed=4, mix=mix)
    losses = StepRunner(model, vocabulary)(sampler.sample())
    assert "g_ground" in losses and torch.isfinite(losses["g_ground"])
    losses["total"].backward()
    assert model.decoder.grounding.query_side.net[-1].weight.grad is not None


def test_train_only_freezes_everything_else(tmp_path):
    config = short_run(tmp_path, lr=0.01, train_only=["decoder.grounding."], mix=PHRASES_ONLY)
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("decoder.grounding.") for k in changed)
    with pytest.raises(ValueError, match="matches no parameter"):
        Trainer(replace(config, out_dir=str(tmp_path / "other"), train_only=["nothing."]))
    with pytest.raises(ValueError, match="names no part"):
        TrainConfig(train_only=[])


def test_weights_without_the_head_initialise_a_model_with_it(tmp_path):
    tiny = load_config("tiny")
    without = replace(tiny, decoder=replace(tiny.decoder, grounding_hidden=0))
    old = build_model(without, seed=3).eval()
    path = save_model(old, tmp_path / "old.safetensors", ModelCard(without))
    new = load_into("tiny", path)
    assert new.decoder.grounding is not None and old.decoder.grounding is None
    with pytest.raises(ValueError, match="grounding_hidden"):
        DecoderConfig(grounding_hidden=-1)


def test_the_segmenter_answers_a_phrase_with_the_heads_choice():
    model = random_model("tiny", seed=5).eval()
    segmenter = Segmenter(model, ModelCard(config=model.config, vocabulary=list(class_names())))
    image = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    encoded = segmenter.encode_image(image)
    prompts = PromptSet(objects=[ObjectPrompt(text="the red ring")])
    outputs = segmenter.decode_outputs(encoded, prompts)
    scores = outputs["group_grounding"]
    assert scores.shape == (1, 1, model.decoder.num_queries)
    query = grounded_query(
        outputs["group_masks"][0, 0],
        outputs["object_masks"][0],
        segmenter.text_embeddings(["the red ring"])[0],
        outputs["object_embeds"][0],
        learned_scores=scores[0, 0],
    )
    drawn = (outputs["object_masks"][0] > 0).any(axis=(1, 2))
    if query is None:
        assert not drawn.any() or not (outputs["group_masks"][0, 0] > 0).any()
    else:
        assert drawn[query] and scores[0, 0, query] == scores[0, 0][drawn].max()


def test_the_learned_choice_skips_queries_that_draw_nothing():
    group = np.ones((4, 4), np.float32)
    objects = np.stack([np.ones((4, 4)), -np.ones((4, 4)), np.ones((4, 4))]).astype(np.float32)
    phrase, embeds = np.zeros(2, np.float32), np.zeros((3, 2), np.float32)
    learned = np.array([0.0, 9.0, 1.0], np.float32)
    assert grounded_query(group, objects, phrase, embeds, learned_scores=learned) == 2
    nothing = -np.ones((3, 4, 4), np.float32)
    assert grounded_query(group, nothing, phrase, embeds, learned_scores=learned) is None


def test_the_shipped_heads_choice_beats_the_hand_rule_on_val_phrases_naming_things():
    """The demo model's query-grounding head against the rule it started from, on the same
    decoder outputs (12 val scenes, every phrase naming a thing)."""
    demo = Segmenter.from_pretrained(DEMO)
    ious: dict[bool, list[float]] = {True: [], False: []}
    for item in val_thing_phrases(demo):
        outputs = demo.decode_outputs(item.encoded, item.prompts)
        assert "group_grounding" in outputs
        for slot, phrase in enumerate(item.phrases):
            for learned in (True, False):
                query = grounded_query(
                    outputs["group_masks"][0, slot],
                    outputs["object_masks"][0],
                    demo.text_embeddings([phrase.text])[0],
                    outputs["object_embeds"][0],
                    learned_scores=outputs["group_grounding"][0, slot] if learned else None,
                )
                logits = outputs["group_masks"][0, slot : slot + 1]
                if query is not None:
                    logits = outputs["object_masks"][0, query : query + 1]
                mask = prompted_masks(logits, item.encoded.transform)[0]
                ious[learned].append(iou(item.truth(slot), mask))
    assert len(ious[True]) > 100
    assert np.mean(ious[True]) > np.mean(ious[False]) + 0.02
