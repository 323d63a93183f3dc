"""The official SEEM v1 language encoder: checkpoint layout, tokenizer, embeddings, vocabulary.

Expected token ids are what the official tokenizer (HF ``CLIPTokenizer``, transformers 4.34.0,
'openai/clip-vit-base-patch32' vocabulary) returns for the same strings.
"""

from __future__ import annotations

import pytest
import torch

from seem_ros.model.official.language import (
    END_OF_TEXT,
    START_OF_TEXT,
    LanguageEncoder,
    clip_tokenizer,
)
from seem_ros.model.official.manifest import load_manifest, random_official_state_dict
from seem_ros.model.official.vocabulary import (
    BACKGROUND,
    COCO_PANOPTIC_CLASSES,
    COCO_STUFF_CLASSES,
    COCO_THING_CLASSES,
    PROMPT_TEMPLATES,
    coco_panoptic_vocabulary,
    is_coco_thing,
    prompt_name,
    prompt_sentences,
)

PREFIX = "sem_seg_head.predictor.lang_encoder."


@pytest.fixture(scope="module")
def official_encoder() -> LanguageEncoder:
    """Full size, with random weights of the official keys and shapes."""
    state = random_official_state_dict("seem_focalt_v1", seed=0)
    encoder = LanguageEncoder()
    encoder.load_state_dict(
        {key[len(PREFIX) :]: value for key, value in state.items() if key.startswith(PREFIX)}
    )
    return encoder.eval()


@pytest.fixture(scope="module")
def small_encoder() -> LanguageEncoder:
    """A narrow, shallow encoder: the batching, templating and pooling logic at a small cost."""
    torch.manual_seed(0)
    encoder = LanguageEncoder(width=64, layers=2, heads=4, dim_proj=32).eval()
    with torch.no_grad():  # biases and norms away from their neutral init
        for param in encoder.parameters():
            if param.ndim == 1:
                param.add_(0.1 * torch.randn_like(param))
    return encoder


def test_state_dict_matches_the_official_manifest() -> None:
    entries = load_manifest("seem_focalt_v1").entries
    expected = {
        key[len(PREFIX) :]: entry.shape for key, entry in entries.items() if key.startswith(PREFIX)
    }
    state = LanguageEncoder().state_dict()
    assert list(state) == list(expected)  # same keys, same order
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert len(expected) == 2 + 4 + 12 * 12  # proj, scale; embeddings, ln_final; 12 blocks


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("a photo of a dog.", [320, 1125, 539, 320, 1929, 269]),
        ("A PHOTO of a Dog.", [320, 1125, 539, 320, 1929, 269]),  # lower-cased
        ("Hello, world! Don't stop.", [3306, 267, 1002, 256, 847, 713, 1691, 269]),
        ("sky-other-merged", [2390, 268, 1010, 268, 46492]),
        ("traffic light", [3399, 1395]),
        ("café", [15304]),
        ("AT&amp;T", [536, 261, 339]),  # ftfy unescapes the entity
        ("the <|endoftext|> token", [518, END_OF_TEXT, 17134]),
        ("", []),
    ],
)
def test_tokenizer_matches_the_official_ids(text: str, ids: list[int]) -> None:
    batch = clip_tokenizer()([text])
    count = len(ids) + 2
    assert batch.input_ids.shape == batch.attention_mask.shape == (1, 77)
    assert batch.input_ids.dtype == batch.attention_mask.dtype == torch.long
    assert batch.input_ids[0, :count].tolist() == [START_OF_TEXT, *ids, END_OF_TEXT]
    assert batch.attention_mask[0].tolist() == [1] * count + [0] * (77 - count)
    assert (batch.input_ids[0, count:] == END_OF_TEXT).all()  # padded with end-of-text


def test_tokenizer_cleans_whitespace_and_truncates_keeping_the_end_token() -> None:
    tokenizer = clip_tokenizer()
    assert torch.equal(
        tokenizer(["  a\tphoto \n of\u00a0a   dog. "]).input_ids,
        tokenizer(["a photo of a dog."]).input_ids,
    )
    long_text = "the quick brown fox jumps over the lazy dog " * 20
    batch = tokenizer([long_text, "dog"])
    assert batch.attention_mask[0].sum() == 77
    assert batch.input_ids[0, 0] == START_OF_TEXT and batch.input_ids[0, -1] == END_OF_TEXT
    assert batch.input_ids[0, 1:76].tolist() == tokenizer.encode(long_text)[:75]
    assert batch.attention_mask[1].sum() == 3
    with pytest.raises(TypeError):
        tokenizer("not a list")  # type: ignore[arg-type]


def test_sentence_embeddings_are_unit_vectors_in_input_order(
    small_encoder: LanguageEncoder,
) -> None:
    texts = ["a much longer sentence about a red mug on a table.", "dog", "", "a photo of a cat."]
    embeds = small_encoder.encode_sentences(texts, batch_size=3)
    assert embeds.shape == (4, 32)
    torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(4))
    one_by_one = torch.cat([small_encoder.encode_sentences([text]) for text in texts])
    torch.testing.assert_close(embeds, one_by_one, atol=1e-6, rtol=0)
    assert small_encoder.encode_sentences([]).shape == (0, 32)


def _reference_class_embedding(encoder: LanguageEncoder, sentences: list[str]) -> torch.Tensor:
    """The official eval path, naively: one class, padded 77-token batch, mean, renormalise."""
    batch = encoder.tokenize(sentences)
    with torch.no_grad():
        _, pooled = encoder.forward_tokens(batch.input_ids, batch.attention_mask)
    unit = pooled / (pooled.norm(dim=-1, keepdim=True) + 1e-7)
    mean = unit.mean(dim=0)
    return mean / mean.norm()


def test_class_embeddings_equal_a_naive_per_class_reference(
    small_encoder: LanguageEncoder,
) -> None:
    names = ["person", "sky-other-merged", "door-stuff", "the <|endoftext|> x", BACKGROUND]
    got = small_encoder.class_embeddings(names, batch_size=100)
    expected = torch.stack(
        [_reference_class_embedding(small_encoder, prompt_sentences(name)) for name in names]
    )
    assert got.shape == (5, 32)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    alone = small_encoder.class_embeddings(["traffic light"], batch_size=1)
    expected = _reference_class_embedding(small_encoder, prompt_sentences("traffic light"))
    torch.testing.assert_close(alone[0], expected, atol=1e-6, rtol=0)
    with_bar = small_encoder.class_embeddings(["traffic light"], batch_size=7, progress=True)
    torch.testing.assert_close(with_bar, alone, atol=1e-6, rtol=0)
    assert small_encoder.class_embeddings([]).shape == (0, 32)
    plain = small_encoder.class_embeddings(names, templates=False)
    expected_plain = torch.stack([_reference_class_embedding(small_encoder, [n]) for n in names])
    torch.testing.assert_close(plain, expected_plain, atol=1e-6, rtol=0)  # raw names, no strip


def test_trimming_to_the_longest_text_is_exact_under_the_causal_mask(
    official_encoder: LanguageEncoder,
) -> None:
    texts = ["a photo of a dog.", "person", "the hard to see traffic light in a video game.", ""]
    batch = official_encoder.tokenize(texts)
    longest = int(batch.attention_mask.sum(dim=1).max())
    with torch.inference_mode():
        full = official_encoder.lang_encoder(batch.input_ids)  # all 77 positions
        trimmed = official_encoder.lang_encoder(batch.input_ids[:, :longest])
        _, pooled = official_encoder.forward_tokens(batch.input_ids, batch.attention_mask)
    # equal up to float rounding (different matrix sizes); padding leaking in would be ~0.1-1
    torch.testing.assert_close(trimmed, full[:, :longest], atol=1e-5, rtol=0)
    untrimmed = pooled / (pooled.norm(dim=-1, keepdim=True) + 1e-7)
    torch.testing.assert_close(
        official_encoder.encode_sentences(texts), untrimmed, atol=1e-6, rtol=0
    )


def test_a_shared_prefix_continues_each_sequence(official_encoder: LanguageEncoder) -> None:
    """Class embeddings run each template's leading tokens once, then each sentence's rest."""
    texts = ["a photo of a dog.", "a photo of a traffic light.", "the toy dog.", "the toy sky."]
    batch = official_encoder.tokenize(texts)
    transformer = official_encoder.lang_encoder
    prefix_ids = batch.input_ids[[0, 2], :5]  # "<start> a photo of a", "<start> the toy"
    lengths = torch.tensor([5, 3])
    groups = torch.tensor([0, 0, 1, 1])
    starts = lengths[groups]
    rest = torch.stack([ids[start : start + 6] for ids, start in zip(batch.input_ids, starts)])
    with torch.inference_mode():
        full = transformer(batch.input_ids[:, :11])
        prefix = transformer.shared_prefix(prefix_ids, lengths)
        continued = transformer(rest, prefix=prefix, groups=groups)
    for row, start in enumerate(starts.tolist()):
        torch.testing.assert_close(continued[row], full[row, start : start + 6], atol=1e-5, rtol=0)


def test_grounding_tokens_cover_start_text_and_end(official_encoder: LanguageEncoder) -> None:
    text = "the red mug on the table"
    grounding = official_encoder.grounding_tokens(text)
    count = len(clip_tokenizer().encode(text)) + 2
    assert grounding.tokens.shape == (count, 512) and grounding.sentence.shape == (512,)
    batch = official_encoder.tokenize([text])
    with torch.no_grad():
        tokens, sentences = official_encoder.forward_tokens(batch.input_ids, batch.attention_mask)
    torch.testing.assert_close(grounding.tokens, tokens[0][batch.attention_mask[0].bool()])
    torch.testing.assert_close(grounding.sentence, sentences[0])
    torch.testing.assert_close(grounding.sentence, grounding.tokens[-1])  # end token is last
    assert not grounding.tokens.is_inference()


def test_similarity_scales_cosines_by_the_logit_scale(small_encoder: LanguageEncoder) -> None:
    text = small_encoder.class_embeddings(["dog", "cat", "tree"], templates=False)
    visual = torch.randn(2, 5, 32)
    logits = small_encoder.similarity(visual, text)
    assert logits.shape == (2, 5, 3)
    cosines = torch.nn.functional.cosine_similarity(visual[..., None, :], text, dim=-1)
    torch.testing.assert_close(logits, small_encoder.logit_scale.exp() * cosines)


def test_coco_panoptic_vocabulary() -> None:
    assert len(COCO_PANOPTIC_CLASSES) == 133 == len(set(COCO_PANOPTIC_CLASSES))
    assert len(COCO_THING_CLASSES) == 80 and len(COCO_STUFF_CLASSES) == 53
    assert COCO_THING_CLASSES[0] == "person" and COCO_THING_CLASSES[-1] == "toothbrush"
    assert COCO_STUFF_CLASSES[0] == "banner" and COCO_STUFF_CLASSES[-1] == "rug-merged"
    assert is_coco_thing(79) and not is_coco_thing(80)
    assert coco_panoptic_vocabulary() == [*COCO_PANOPTIC_CLASSES, "background"]
    assert len(coco_panoptic_vocabulary(with_background=False)) == 133
    assert len(PROMPT_TEMPLATES) == 81 and PROMPT_TEMPLATES[:2] == ("{}.", "a photo of a {}.")
    assert prompt_name("sky-other-merged") == "sky" and prompt_name("door-stuff") == "door"
    assert prompt_name("water-other") == "water" and prompt_name("wall-brick") == "wall-brick"
    assert prompt_sentences("tree-merged")[1] == "a photo of a tree."
