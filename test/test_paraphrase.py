"""Rephrased referring expressions (seem_ros.data.paraphrase)."""

from __future__ import annotations

import numpy as np
import pytest

from seem_ros.data import render_scene, scene_seed
from seem_ros.data.paraphrase import _TEMPLATES, KINDS, SYNONYMS, paraphrase, parse_phrase


@pytest.fixture(scope="module")
def phrases():
    texts = []
    for index in range(15):
        texts += [p.text for p in render_scene(scene_seed("val", index)).phrases]
    return texts


def test_every_generated_phrase_parses(phrases):
    assert all(parse_phrase(text) is not None for text in phrases)


@pytest.mark.parametrize(
    "text, parts",
    [
        ("the floor", {"form": "stuff", "noun": "floor"}),
        ("the small red star", {"form": "attribute", "size": "small", "colour": "red"}),
        ("the leftmost ring", {"form": "extreme", "extreme": "leftmost", "noun": "ring"}),
        ("the blue ring on the right", {"form": "extreme", "extreme": "rightmost"}),
        (
            "the star to the left of the large circle",
            {"form": "relation", "relation": "left of", "anchor": "the large circle"},
        ),
    ],
)
def test_parse_reads_the_parts_back(text, parts):
    parsed = parse_phrase(text)
    assert parsed is not None
    for name, value in parts.items():
        assert getattr(parsed, name) == value


def test_other_text_is_left_alone():
    assert parse_phrase("a mug on the table") is None
    assert paraphrase("a mug on the table", np.random.default_rng(0)) == "a mug on the table"


@pytest.mark.parametrize("templates", ["train", "bench"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_the_phrase(phrases, kind, templates):
    rng = np.random.default_rng(0)
    texts = phrases[:60]
    if kind == "synonym":  # only phrases with a word that has a stand-in can change
        texts = [t for t in texts if set(t.split()) & set(SYNONYMS)]
    changed = [paraphrase(t, rng, kind=kind, templates=templates) != t for t in texts]
    assert len(texts) > 20 and all(changed)


def test_paraphrases_keep_the_content_words(phrases):
    rng = np.random.default_rng(1)
    for text in phrases[:80]:
        for kind in ("word_order", "relative_clause", "filler", "imperative"):
            out = paraphrase(text, rng, kind=kind, templates="bench")
            parsed = parse_phrase(text)
            for word in (parsed.noun, parsed.size, parsed.colour):
                if word:
                    assert word in out, (text, out)


def test_synonyms_come_from_the_shared_lexicon():
    rng = np.random.default_rng(0)
    out = paraphrase("the small red circle", rng, kind="synonym")
    assert out != "the small red circle"
    replaced = set(out.split()) - {"the", "small", "red", "circle"}
    assert replaced <= {w for options in SYNONYMS.values() for o in options for w in o.split()}


def test_train_and_bench_templates_share_no_sentence():
    train, bench = _TEMPLATES["train"], _TEMPLATES["bench"]
    for key in train:
        assert not set(train[key]) & set(bench[key]), key


def test_paraphrase_is_deterministic_for_a_seed(phrases):
    a = [paraphrase(t, np.random.default_rng(5), templates="bench") for t in phrases[:20]]
    b = [paraphrase(t, np.random.default_rng(5), templates="bench") for t in phrases[:20]]
    assert a == b


def test_unknown_kind_or_templates_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        paraphrase("the star", np.random.default_rng(0), kind="shout")
    with pytest.raises(ValueError, match="templates"):
        paraphrase("the star", np.random.default_rng(0), templates="test")
