"""Rephrasing referring expressions: other word orders, relative clauses, filler words,
imperative commands and synonyms, from two disjoint template sets.

The world's phrases come from a small grammar (:mod:`seem_ros.data.phrases`): "the small red
star", "the leftmost ring", "the ring on the left", "the star above the blue circle", "the
floor". :func:`parse_phrase` reads one back into its parts; :func:`paraphrase` writes the same
meaning another way. ``templates="train"`` is what the recipe trains with; ``"bench"`` is the
benchmark's ``paraphrase`` section: different templates and filler words, so a model is measured
on sentences it never trained on. Both draw synonyms from one lexicon (:data:`SYNONYMS`): a
tiny text tower trained from scratch can only know a synonym it was shown.

from seem_ros.data.paraphrase import paraphrase
paraphrase("the small red star", rng, kind="imperative")  # e.g. "segment the small red star"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from seem_ros.data.vocabulary import COLOURS, SIZES, STUFF_CATEGORIES, THING_CATEGORIES

KINDS: tuple[str, ...] = ("word_order", "relative_clause", "filler", "imperative", "synonym")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "small": ("little", "tiny"),
    "large": ("big", "huge"),
    "object": ("thing", "item"),
    "shape": ("thing", "item"),
    "circle": ("disc", "disk"),
    "square": ("box",),
    "ring": ("donut", "hoop"),
    "cross": ("plus sign",),
    "diamond": ("rhombus",),
    "hexagon": ("hex",),
    "above": ("over",),
    "below": ("under", "beneath"),
    "leftmost": ("left-most", "furthest left"),
    "rightmost": ("right-most", "furthest right"),
    "topmost": ("top-most", "highest"),
    "bottommost": ("bottom-most", "lowest"),
    "floor": ("ground",),
    "carpet": ("rug",),
    "table": ("desk",),
}
"""Words and their stand-ins, shared by both template sets."""

_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "imperative": (
            "segment {p}",
            "find {p}",
            "select {p}",
            "highlight {p}",
            "show {p}",
            "mask {p}",
            "give me {p}",
            "look for {p}",
            "track {p}",
        ),
        "prefix": ("um", "so", "okay", "now", "hmm"),
        "suffix": ("please", "now", "for me", "thanks"),
        "attribute_clause": ("{d} {n} that is {a}", "{d} {n} which is {a}"),
        "attribute_order": ("{d} {n} in {colour}", "{d} {n}, {a}"),
        "extreme_clause": ("{d} {n} that is {x}", "{d} {n} which is {x}"),
        "extreme_order": ("{x} of all, {d} {n}", "{d} {n}, {x}"),
        "relation_clause": ("{d} {n} that is {r} {anchor}", "{d} {n} which is {r} {anchor}"),
        "relation_order": ("{r} {anchor}: {d} {n}", "{d} {n}, {r} {anchor}"),
        "plain_clause": ("{d} {n} that is there", "{d} {n} that you see"),
        "plain_order": ("{n}, {d} one", "{d} only {n}"),
    },
    "bench": {
        "imperative": (
            "please find {p}",
            "can you segment {p}",
            "show me {p}",
            "point to {p}",
            "where is {p}",
            "locate {p}",
            "pick out {p}",
        ),
        "prefix": ("uh", "well", "right", "hey"),
        "suffix": ("if you can", "over there", "thank you", "quickly"),
        "attribute_clause": ("{d} {n} that looks {a}", "{d} {n} that happens to be {a}"),
        "attribute_order": ("{d} {n} coloured {colour}", "{n} that is {a}, {d} one"),
        "extreme_clause": ("{d} {n} that lies {x}", "{d} {n} sitting {x}"),
        "extreme_order": ("{d} {x} one of the {ns}", "{x}: {d} {n}"),
        "relation_clause": ("{d} {n} that sits {r} {anchor}", "{d} {n} located {r} {anchor}"),
        "relation_order": ("{r} {anchor} is {d} {n}", "{d} {n} you see {r} {anchor}"),
        "plain_clause": ("{d} {n} in the picture", "{d} {n} which is visible"),
        "plain_order": ("{n}: {d} one", "all of {d} {n}"),
    },
}
_EXTREME_WORDS = {
    "leftmost": "furthest left",
    "rightmost": "furthest right",
    "topmost": "at the very top",
    "bottommost": "at the very bottom",
}
_PAIR_EXTREMES = {
    "on the left": "leftmost",
    "on the right": "rightmost",
    "at the top": "topmost",
    "at the bottom": "bottommost",
}
_RELATIONS = ("to the left of", "to the right of", "left of", "right of", "above", "below")
_NOUNS = (*THING_CATEGORIES, "object", "shape")
_NP = (
    rf"(?:(?P<{{g}}size>{'|'.join(SIZES)}) )?"
    rf"(?:(?P<{{g}}colour>{'|'.join(COLOURS)}) )?"
    rf"(?P<{{g}}noun>{'|'.join(_NOUNS)})"
)
_PATTERNS = (
    ("stuff", re.compile(rf"^the (?P<noun>{'|'.join(STUFF_CATEGORIES)})$")),
    (
        "extreme",
        re.compile(rf"^the (?P<extreme>{'|'.join(_EXTREME_WORDS)}) {_NP.format(g='')}$"),
    ),
    (
        "pair_extreme",
        re.compile(rf"^the {_NP.format(g='')} (?P<extreme>{'|'.join(_PAIR_EXTREMES)})$"),
    ),
    (
        "relation",
        re.compile(
            rf"^the {_NP.format(g='')} (?P<relation>{'|'.join(_RELATIONS)}) "
            rf"the {_NP.format(g='a_')}$"
        ),
    ),
    ("attribute", re.compile(rf"^the {_NP.format(g='')}$")),
)


@dataclass(frozen=True)
class ParsedPhrase:
    """The parts of one generated phrase; ``anchor`` is the other object of a relation."""

    form: str  # stuff | extreme | relation | attribute
    noun: str
    size: str | None = None
    colour: str | None = None
    extreme: str | None = None  # leftmost | rightmost | topmost | bottommost
    relation: str | None = None  # left of | right of | above | below
    anchor: str | None = None  # the anchor's noun phrase, "the blue circle"


def parse_phrase(text: str) -> ParsedPhrase | None:
    """The parts of a phrase the world generates; None for any other text."""
    for form, pattern in _PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        parsed = ParsedPhrase(
            form="extreme" if form == "pair_extreme" else form,
            noun=groups["noun"],
            size=groups.get("size"),
            colour=groups.get("colour"),
        )
        if form == "extreme":
            return _replace(parsed, extreme=groups["extreme"])
        if form == "pair_extreme":
            return _replace(parsed, extreme=_PAIR_EXTREMES[groups["extreme"]])
        if form == "relation":
            words = [groups.get("a_size"), groups.get("a_colour"), groups["a_noun"]]
            return _replace(
                parsed,
                relation=groups["relation"].removeprefix("to the "),
                anchor="the " + " ".join(w for w in words if w),
            )
        return parsed
    return None


def _replace(parsed: ParsedPhrase, **changes: str) -> ParsedPhrase:
    from dataclasses import replace

    return replace(parsed, **changes)


def paraphrase(
    text: str,
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    templates: str = "train",
) -> str:
    """``text`` said another way, by one ``kind`` of change (random when None); text that is
    not one of the world's phrases is returned unchanged. Deterministic for a given ``rng``."""
    if templates not in _TEMPLATES:
        raise ValueError(f"unknown templates {templates!r}; expected one of {tuple(_TEMPLATES)}")
    if kind is None:
        kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind not in KINDS:
        raise ValueError(f"unknown paraphrase kind {kind!r}; expected one of {KINDS}")
    parsed = parse_phrase(text)
    if parsed is None:
        return text
    table = _TEMPLATES[templates]
    if kind == "imperative":
        return _pick(rng, table["imperative"]).format(p=text)
    if kind == "filler":
        if rng.random() < 0.5:
            return f"{_pick(rng, table['prefix'])} {text}"
        return f"{text} {_pick(rng, table['suffix'])}"
    if kind == "synonym":
        return _with_synonyms(text, rng)
    shape = "clause" if kind == "relative_clause" else "order"
    return _restructure(parsed, rng, table, shape)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _with_synonyms(text: str, rng: np.random.Generator) -> str:
    """Every replaceable word has an even chance of a stand-in; at least one is replaced."""
    words = text.split(" ")
    replaceable = [i for i, w in enumerate(words) if w in SYNONYMS]
    if not replaceable:
        return text
    forced = replaceable[int(rng.integers(len(replaceable)))]
    for i in replaceable:
        if i == forced or rng.random() < 0.5:
            words[i] = _pick(rng, SYNONYMS[words[i]])
    return " ".join(words)


def _restructure(
    parsed: ParsedPhrase, rng: np.random.Generator, table: dict[str, tuple[str, ...]], shape: str
) -> str:
    noun = parsed.noun
    adjectives = [w for w in (parsed.size, parsed.colour) if w]
    if parsed.form == "stuff" or (parsed.form == "attribute" and not adjectives):
        return _pick(rng, table[f"plain_{shape}"]).format(d="the", n=noun)
    if parsed.form == "attribute":
        template = _pick(rng, table[f"attribute_{shape}"])
        if "{colour}" in template and parsed.colour is None:
            template = next(t for t in table[f"attribute_{shape}"] if "{colour}" not in t)
        size = f"{parsed.size} " if parsed.size and "{colour}" in template else ""
        return template.format(
            d="the", n=f"{size}{noun}", colour=parsed.colour, a=" and ".join(adjectives)
        )
    head = " ".join(w for w in (parsed.size, parsed.colour, noun) if w)
    if parsed.form == "extreme":
        assert parsed.extreme is not None
        words = _EXTREME_WORDS[parsed.extreme] if shape == "clause" else parsed.extreme
        return _pick(rng, table[f"extreme_{shape}"]).format(
            d="the", n=head, ns=_plural(head), x=words
        )
    assert parsed.relation is not None and parsed.anchor is not None
    return _pick(rng, table[f"relation_{shape}"]).format(
        d="the", n=head, r=parsed.relation, anchor=parsed.anchor
    )


def _plural(noun_phrase: str) -> str:
    return noun_phrase + ("es" if noun_phrase.endswith(("s", "x")) else "s")
