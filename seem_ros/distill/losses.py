"""Distillation losses: the student's outputs against the teacher's, on the frame grid.

* Generic: the teacher's confident queries are targets. Student queries are matched to them
  Hungarian-style (class agreement + mask BCE + Dice, Mask2Former's weights); a matched query
  learns the teacher's class *distribution* (soft cross-entropy), its mask (BCE + Dice to the
  teacher's probabilities) and its embedding (cosine, in the teacher's joint space); the others
  learn "no object".
* Prompted: the student's answer to the teacher's prompt learns the teacher's answer mask; its
  score learns the IoU of its own mask with that answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from ..train.losses import bce_loss, dice_loss


@dataclass(frozen=True)
class DistillWeights:
    cls: float = 2.0
    bce: float = 5.0
    dice: float = 5.0
    embed: float = 2.0
    void: float = 0.1  # weight of "no object" for unmatched queries in the class loss
    answer_bce: float = 5.0
    answer_dice: float = 5.0
    score: float = 1.0
    answer_embed: float = 1.0


def pairwise_mask_cost(
    logits: torch.Tensor, targets: torch.Tensor, weights: DistillWeights
) -> torch.Tensor:
    """(N, P) logits vs (T, P) soft targets -> (N, T) BCE + Dice cost."""
    bce = (F.softplus(-logits) @ targets.t() + F.softplus(logits) @ (1 - targets).t()) / max(
        1, logits.shape[1]
    )
    probs = logits.sigmoid()
    dice = 1 - (2 * probs @ targets.t() + 1) / (
        probs.sum(-1, keepdim=True) + targets.sum(-1)[None] + 1
    )
    return weights.bce * bce + weights.dice * dice


def generic_distill_loss(
    mask_logits: torch.Tensor,
    class_logits: torch.Tensor,
    embeds: torch.Tensor,
    teacher_probs: torch.Tensor,
    teacher_masks: torch.Tensor,
    teacher_embeds: torch.Tensor,
    weights: DistillWeights,
) -> dict[str, torch.Tensor]:
    """One frame. Student: (N, gh, gw) mask logits on the frame grid, (N, C + 1) class logits,
    (N, E) embeddings. Teacher's confident queries: (T, C + 1) probabilities, (T, gh, gw) mask
    probabilities, (T, E) unit embeddings."""
    count = class_logits.shape[0]
    void_index = class_logits.shape[1] - 1
    log_probs = class_logits.log_softmax(-1)
    flat = mask_logits.flatten(1)
    if teacher_probs.shape[0] == 0:
        void_ce = -log_probs[:, void_index].mean()
        zero = mask_logits.sum() * 0.0
        return {"cls": weights.cls * void_ce, "bce": zero, "dice": zero, "embed": zero}
    targets = teacher_masks.flatten(1)
    with torch.no_grad():
        agreement = log_probs.exp() @ teacher_probs.t()
        cost = -weights.cls * agreement + pairwise_mask_cost(flat, targets, weights)
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
    rows_t = torch.as_tensor(rows, dtype=torch.long)
    cols_t = torch.as_tensor(cols, dtype=torch.long)
    matched_ce = -(teacher_probs[cols_t] * log_probs[rows_t]).sum(-1)
    unmatched = torch.ones(count, dtype=torch.bool)
    unmatched[rows_t] = False
    void_ce = -log_probs[unmatched, void_index]
    cls = (matched_ce.sum() + weights.void * void_ce.sum()) / (
        len(rows) + weights.void * int(unmatched.sum())
    )
    cosine = F.cosine_similarity(embeds[rows_t], teacher_embeds[cols_t], dim=-1)
    return {
        "cls": weights.cls * cls,
        "bce": weights.bce * bce_loss(mask_logits[rows_t], teacher_masks[cols_t]).mean(),
        "dice": weights.dice * dice_loss(mask_logits[rows_t], teacher_masks[cols_t]).mean(),
        "embed": weights.embed * (1 - cosine).mean(),
    }


def answer_distill_loss(
    mask_logits: torch.Tensor,
    score_logits: torch.Tensor,
    targets: torch.Tensor,
    embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    embed_valid: torch.Tensor,
    weights: DistillWeights,
) -> dict[str, torch.Tensor]:
    """Prompted answers, flattened: (K, gh, gw) logits, (K,) scores vs (K, gh, gw) teacher
    answers; (K, E) embeddings vs the teacher's embedding of the query the prompt was placed
    on, where known (``embed_valid``)."""
    with torch.no_grad():
        pred = mask_logits > 0
        truth = targets > 0.5
        inter = (pred & truth).flatten(1).sum(-1).float()
        union = (pred | truth).flatten(1).sum(-1).float()
        # an empty answer matched by an empty prediction is a perfect answer
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    terms = {
        "a_bce": weights.answer_bce * bce_loss(mask_logits, targets).mean(),
        "a_dice": weights.answer_dice * dice_loss(mask_logits, targets).mean(),
        "a_score": weights.score * F.binary_cross_entropy_with_logits(score_logits, iou),
    }
    if bool(embed_valid.any()):
        cosine = F.cosine_similarity(embeds[embed_valid], target_embeds[embed_valid], dim=-1)
        terms["a_embed"] = weights.answer_embed * (1 - cosine).mean()
    else:
        terms["a_embed"] = embeds.sum() * 0.0
    return terms
