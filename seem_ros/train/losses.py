"""SEEM's losses: Hungarian-matched generic loss (class + mask BCE + Dice) and prompt losses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class LossWeights:
    """Mask2Former's weights (class 2, BCE 5, Dice 5), plus the prompt heads."""

    cls: float = 2.0
    bce: float = 5.0
    dice: float = 5.0
    void: float = 0.1  # weight of "no object" in the class cross-entropy
    score: float = 1.0
    group_cls: float = 1.0
    grounding: float = 1.0  # the query-grounding head's cross-entropy
    # the training-only centre-offset task on the pixel features (seem_ros.train.centre_offset);
    # 0 leaves it out
    centre_offset: float = 0.0


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(M, h, w) logits and soft targets -> (M,) 1 - Dice."""
    probs = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(M, h, w) -> (M,) mean binary cross-entropy per mask."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).mean(-1)


@torch.no_grad()
def hungarian_match(
    mask_logits: torch.Tensor,
    class_logits: torch.Tensor,
    target_masks: torch.Tensor,
    target_labels: torch.Tensor,
    weights: LossWeights,
) -> tuple[np.ndarray, np.ndarray]:
    """One image: (N, h, w), (N, C+1) vs (M, h, w), (M,) -> matched (query, target) indices."""
    probs = class_logits.softmax(-1)[:, target_labels]  # N, M
    pred = mask_logits.flatten(1)
    tgt = target_masks.flatten(1)
    # pairwise BCE: mean over pixels of softplus(x) - x * t
    pos = F.softplus(-pred)
    neg = F.softplus(pred)
    bce = (pos @ tgt.t() + neg @ (1 - tgt).t()) / pred.shape[1]
    sig = pred.sigmoid()
    dice = 1 - (2 * sig @ tgt.t() + 1) / (sig.sum(-1, keepdim=True) + tgt.sum(-1)[None] + 1)
    cost = -weights.cls * probs + weights.bce * bce + weights.dice * dice
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    return rows, cols


def generic_loss(
    mask_logits: torch.Tensor,
    class_logits: torch.Tensor,
    targets: list[tuple[torch.Tensor, torch.Tensor]],
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """Batch (B, N, h, w), (B, N, C+1); targets per image (masks (M, h, w), labels (M,))."""
    num_classes = class_logits.shape[-1] - 1
    class_weight = torch.ones(num_classes + 1, device=class_logits.device)
    class_weight[-1] = weights.void
    cls_terms, bce_terms, dice_terms = [], [], []
    for b, (masks, labels) in enumerate(targets):
        rows, cols = hungarian_match(mask_logits[b], class_logits[b], masks, labels, weights)
        wanted = torch.full(
            (class_logits.shape[1],), num_classes, dtype=torch.long, device=class_logits.device
        )
        wanted[torch.as_tensor(rows)] = labels[torch.as_tensor(cols)]
        cls_terms.append(F.cross_entropy(class_logits[b], wanted, weight=class_weight))
        matched = mask_logits[b][torch.as_tensor(rows)]
        matched_targets = masks[torch.as_tensor(cols)]
        bce_terms.append(bce_loss(matched, matched_targets).mean())
        dice_terms.append(dice_loss(matched, matched_targets).mean())
    return {
        "cls": weights.cls * torch.stack(cls_terms).mean(),
        "bce": weights.bce * torch.stack(bce_terms).mean(),
        "dice": weights.dice * torch.stack(dice_terms).mean(),
    }


def group_loss(
    mask_logits: torch.Tensor,
    score_logits: torch.Tensor,
    class_logits: torch.Tensor,
    target_masks: torch.Tensor,
    target_labels: torch.Tensor,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """Prompted objects, flattened over the batch: (K, h, w), (K,), (K, C+1) vs (K, h, w), (K,).

    Besides the mask, the score head learns to predict the mask's IoU (so scores rank answers),
    and the semantic embedding learns the object's class (so prompted objects get labels).
    """
    if mask_logits.shape[0] == 0:
        zero = mask_logits.sum() * 0.0
        return {"g_bce": zero, "g_dice": zero, "g_score": zero, "g_cls": zero}
    with torch.no_grad():
        pred = mask_logits > 0
        tgt = target_masks > 0.5
        inter = (pred & tgt).flatten(1).sum(-1).float()
        union = (pred | tgt).flatten(1).sum(-1).float().clamp(min=1)
        iou = inter / union
    return {
        "g_bce": weights.bce * bce_loss(mask_logits, target_masks).mean(),
        "g_dice": weights.dice * dice_loss(mask_logits, target_masks).mean(),
        "g_score": weights.score * F.binary_cross_entropy_with_logits(score_logits, iou),
        "g_cls": weights.group_cls * F.cross_entropy(class_logits, target_labels),
    }


GROUNDING_MIN_IOU = 0.5
"""A phrase trains the query-grounding head only when some generic query covers its object at
least this well: otherwise no query answers it and any choice would be taught as right."""
GROUNDING_TEMPERATURE = 0.05
"""IoU temperature of the grounding target: queries within a few hundredths of the best IoU
(the decoder's near-duplicates of one object) share the target instead of one of them being
taught as wrong."""


def grounding_loss(
    scores: torch.Tensor,
    object_logits: torch.Tensor,
    target_masks: torch.Tensor,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """Phrases (text-only objects), flattened over the batch: scores (K, N) of the generic
    queries answering each, the queries' mask logits (K, N, h, w) of each phrase's image, and
    the referred objects (K, h, w). Cross-entropy towards a softmax of the queries' IoU with the
    object (temperature :data:`GROUNDING_TEMPERATURE`), over the queries with a non-empty mask."""
    zero = scores.sum() * 0.0
    if scores.shape[0] == 0:
        return {"g_ground": zero}
    with torch.no_grad():
        pred = object_logits > 0
        tgt = (target_masks > 0.5).unsqueeze(1)
        inter = (pred & tgt).flatten(2).sum(-1).float()
        union = (pred | tgt).flatten(2).sum(-1).float().clamp(min=1)
        iou = inter / union
        drawn = pred.flatten(2).any(-1)
        usable = iou.amax(dim=-1) >= GROUNDING_MIN_IOU
        target = (iou / GROUNDING_TEMPERATURE).masked_fill(~drawn, -1.0e4).softmax(dim=-1)
    if not bool(usable.any()):
        return {"g_ground": zero}
    log_probs = scores.masked_fill(~drawn, -1.0e4).log_softmax(dim=-1)
    loss = -(target * log_probs).sum(-1)[usable].mean()
    return {"g_ground": weights.grounding * loss}
