"""Referring expressions that are unambiguous by construction.

A description is a set of attribute constraints (size, colour, category; an empty set
means "object"). A phrase is emitted only when exactly one segment satisfies it:

- attributes: "the small red star" when no other thing shares those attributes;
- extremes: "the leftmost ring" when the extreme ring is ahead of the runner-up by a
  margin ("the ring on the left" only when there are exactly two rings);
- relations: "the ring above the triangle" when the anchor has a unique description,
  exactly one ring lies above it by a margin, and every other ring is not above it at all;
- stuff: "the floor" (a scene has at most one segment per stuff category).

Positions are visible-mask centroids (`Segment.centroid`), in image coordinates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice

from seem_ros.data.scene import ReferringExpression, Segment

MARGIN_FRACTION = 0.05
"""Spatial margin as a fraction of the image's shorter side."""
MAX_EXTREME_PHRASES = 4
MAX_RELATION_PHRASES = 4

Description = tuple[tuple[str, str], ...]
_ATTRIBUTE_SETS: tuple[tuple[str, ...], ...] = (
    ("category",),
    ("colour", "category"),
    ("size", "category"),
    ("size", "colour", "category"),
    ("colour",),
    ("size",),
    ("size", "colour"),
)
"""Attribute subsets in order of preference (shortest, most natural first)."""

_RELATIONS: dict[str, tuple[Callable[[Segment, Segment, float], bool], tuple[str, ...]]] = {
    "left": (lambda a, b, m: a.centroid[0] < b.centroid[0] - m, ("left of", "to the left of")),
    "right": (lambda a, b, m: a.centroid[0] > b.centroid[0] + m, ("right of", "to the right of")),
    "above": (lambda a, b, m: a.centroid[1] < b.centroid[1] - m, ("above",)),
    "below": (lambda a, b, m: a.centroid[1] > b.centroid[1] + m, ("below",)),
}
_EXTREMES: tuple[tuple[int, bool, str, str], ...] = (
    (0, False, "the leftmost {}", "the {} on the left"),
    (0, True, "the rightmost {}", "the {} on the right"),
    (1, False, "the topmost {}", "the {} at the top"),
    (1, True, "the bottommost {}", "the {} at the bottom"),
)
"""(axis, largest first, template, template used only when exactly two things match)."""


def noun_phrase(description: Description) -> str:
    """ "small red star" for a description; "red object" when it names no category."""
    values = dict(description)
    words = [values.get("size"), values.get("colour"), values.get("category", "object")]
    return " ".join(word for word in words if word)


def describe_with(segment: Segment, attributes: Sequence[str]) -> Description:
    return tuple((name, str(getattr(segment, name))) for name in attributes)


def matches(segment: Segment, description: Description) -> bool:
    return all(getattr(segment, name) == value for name, value in description)


def referring_expressions(
    segments: Sequence[Segment], image_hw: tuple[int, int]
) -> list[ReferringExpression]:
    """All phrases of the kinds above for a scene's segments, in a deterministic order."""
    things = [s for s in segments if s.is_thing]
    margin = MARGIN_FRACTION * min(image_hw)
    phrases = [ReferringExpression(f"the {s.category}", s.id) for s in segments if not s.is_thing]
    groups = _description_groups(things)
    for target in things:
        phrases += _attribute_phrases(target, groups)
        phrases += islice(_extreme_phrases(target, groups, margin), MAX_EXTREME_PHRASES)
        phrases += islice(_relation_phrases(target, things, groups, margin), MAX_RELATION_PHRASES)
    return phrases


def _description_groups(things: Sequence[Segment]) -> dict[Description, list[Segment]]:
    """Every description some thing satisfies, with the things satisfying it."""
    groups: dict[Description, list[Segment]] = {(): list(things)}
    for thing in things:
        for attributes in _ATTRIBUTE_SETS:
            description = describe_with(thing, attributes)
            if description not in groups:
                groups[description] = [t for t in things if matches(t, description)]
    return groups


def _target_descriptions(target: Segment) -> list[Description]:
    return [(), *(describe_with(target, attributes) for attributes in _ATTRIBUTE_SETS)]


def unique_description(
    target: Segment, groups: dict[Description, list[Segment]]
) -> Description | None:
    """The preferred description that only `target` satisfies, if any."""
    for attributes in _ATTRIBUTE_SETS:
        description = describe_with(target, attributes)
        if groups[description] == [target]:
            return description
    return None


def _attribute_phrases(target: Segment, groups: dict[Description, list[Segment]]):
    for attributes in _ATTRIBUTE_SETS:
        description = describe_with(target, attributes)
        if groups[description] != [target]:
            continue
        yield ReferringExpression(f"the {noun_phrase(description)}", target.id)
        if "category" not in attributes:
            yield ReferringExpression(
                f"the {noun_phrase(description)[: -len('object')]}shape", target.id
            )


def _extreme_phrases(target: Segment, groups: dict[Description, list[Segment]], margin: float):
    for description in _target_descriptions(target):
        members = groups[description]
        if len(members) < 2:
            continue
        for axis, largest_first, template, pair_template in _EXTREMES:
            ranked = sorted(members, key=lambda s: s.centroid[axis], reverse=largest_first)
            if ranked[0] is not target:
                continue
            if abs(ranked[0].centroid[axis] - ranked[1].centroid[axis]) < margin:
                continue
            yield ReferringExpression(template.format(noun_phrase(description)), target.id)
            if len(members) == 2:
                yield ReferringExpression(pair_template.format(noun_phrase(description)), target.id)


def _relation_phrases(
    target: Segment,
    things: Sequence[Segment],
    groups: dict[Description, list[Segment]],
    margin: float,
):
    for description in _target_descriptions(target):
        if len(groups[description]) < 2:
            continue
        for anchor in things:
            if anchor is target:
                continue
            anchor_description = unique_description(anchor, groups)
            if anchor_description is None:
                continue
            rivals = [m for m in groups[description] if m is not target and m is not anchor]
            for holds, words in _RELATIONS.values():
                if not holds(target, anchor, margin):
                    continue
                if any(holds(rival, anchor, 0.0) for rival in rivals):
                    continue
                target_words, anchor_words = (
                    noun_phrase(description),
                    noun_phrase(anchor_description),
                )
                for word in words:
                    yield ReferringExpression(
                        f"the {target_words} {word} the {anchor_words}", target.id
                    )
