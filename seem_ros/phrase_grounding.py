"""A referring phrase answered by the generic object query it points at.

A text-only object prompt gets two answers from one decoder pass: its own group mask, and the
N generic object queries' masks with their embeddings in the joint text space. The group mask
knows *which* object the phrase means but draws it coarsely and, for a phrase naming only a
category ("the circle"), often settles on the wrong shape; the generic queries draw clean masks
and tell categories apart (they are what panoptic segmentation classifies) but know nothing of
"the leftmost" or "the small red". So the phrase is answered with the query that best agrees
with both: most overlap with the group mask plus ``weight`` times the cosine similarity of the
query's embedding to the phrase's. That is SEEM's own grounding rule (pick the query whose
output embedding matches the phrase) with the prompted group as the tie-breaker. An empty group
mask stays empty: the model found nothing, and a query picked by similarity alone would be a
false positive.

Measured on the validation split with the stage-8 demo model, over every phrase of 60 scenes
(on the model's mask grid): things 0.576 with the group mask, 0.631 grounded; category-only
phrases 0.49 -> 0.69, attribute phrases 0.77/0.81 -> 0.82/0.81, extremes 0.43 -> 0.50,
relations 0.41 -> 0.48, stuff 0.92 -> 0.92.

A decoder with the query-grounding head (``seem_ros/model/query_grounding.py``) scores the
queries itself, learned from the hand rule's two terms plus the queries' positions and tokens;
its scores replace the rule, and the empty-group rule stays.
"""

from __future__ import annotations

import numpy as np

SIMILARITY_WEIGHT = 1.0
"""How much the phrase-to-query similarity counts against the overlap with the group mask
(both lie in [0, 1] for the queries that matter; chosen on the validation split from 0, 0.25,
0.5, 1 and 2)."""


def grounded_query(
    group_logits: np.ndarray,
    object_logits: np.ndarray,
    phrase_embed: np.ndarray,
    object_embeds: np.ndarray,
    *,
    weight: float = SIMILARITY_WEIGHT,
    learned_scores: np.ndarray | None = None,
) -> int | None:
    """The generic query answering a referring phrase, or None to keep the group's own mask.

    Args:
        group_logits: (h, w) the phrase's group mask logits.
        object_logits: (N, h, w) the generic queries' mask logits, on the same grid.
        phrase_embed: (E,) the phrase's unit text embedding.
        object_embeds: (N, E) the queries' unit embeddings.
        weight: the similarity's weight against the overlap (IoU with the group mask).
        learned_scores: (N,) the query-grounding head's scores for this phrase, when the
            decoder has one: the best-scoring query with a non-empty mask answers.
    """
    if weight < 0.0:
        raise ValueError(f"weight must be non-negative, got {weight}")
    group = group_logits > 0.0
    if not group.any() or len(object_logits) == 0:
        return None
    queries = object_logits > 0.0
    if learned_scores is not None:
        drawn = queries.any(axis=(1, 2))
        if not drawn.any():
            return None
        return int(np.argmax(np.where(drawn, learned_scores, -np.inf)))
    intersection = (queries & group).sum(axis=(1, 2))
    union = (queries | group).sum(axis=(1, 2))
    overlap = intersection / np.maximum(union, 1)
    similarity = object_embeds @ phrase_embed
    best = int(np.argmax(overlap + weight * similarity))
    if not queries[best].any():
        return None
    return best
