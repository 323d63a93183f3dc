"""Decoder outputs -> instances, panoptic segments, semantic maps (Mask2Former-style)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .results import Instance
from .transforms import ResizeTransform

TASKS = ("instance", "panoptic", "semantic")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass(frozen=True)
class GenericSettings:
    score_threshold: float = 0.5
    max_instances: int = 50
    overlap_keep: float = 0.5  # a segment must keep this share of its own mask after overlaps
    min_area: int = 16


def generic_instances(
    mask_logits: np.ndarray,
    class_logits: np.ndarray,
    classes: Sequence[str],
    transform: ResizeTransform,
    *,
    task: str,
    stuff_classes: Sequence[str] = (),
    settings: GenericSettings | None = None,
) -> tuple[list[Instance], np.ndarray | None]:
    """Object-query outputs of one image -> instances (and a semantic map for ``semantic``).

    Args:
        mask_logits: (N, g, g) on the model grid; class_logits: (N, C + 1), last = no object.
        task: ``instance`` (things may be any class, non-overlapping), ``panoptic`` (as instance,
            but each stuff class merges into one segment), ``semantic`` (per-pixel class map;
            instances are the per-class regions).
    """
    settings = settings or GenericSettings()
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    probs = softmax(class_logits)
    labels = probs[:, :-1].argmax(axis=1)
    class_scores = probs[np.arange(len(labels)), labels]
    if task == "semantic":
        return _semantic(mask_logits, probs, classes, transform, settings)

    candidates = np.flatnonzero(class_scores >= settings.score_threshold * 0.5)
    if candidates.size == 0:
        return [], None
    mask_probs = sigmoid(transform.logits_to_image(mask_logits[candidates]))
    binary = mask_probs > 0.5
    areas = binary.sum(axis=(1, 2))
    mask_quality = (mask_probs * binary).sum(axis=(1, 2)) / np.maximum(areas, 1)
    scores = class_scores[candidates] * mask_quality
    order = [
        i for i in np.argsort(-scores) if scores[i] >= settings.score_threshold and areas[i] > 0
    ]
    order = order[: settings.max_instances]
    if not order:
        return [], None
    # each pixel goes to the most confident segment that covers it
    weighted = scores[order, None, None] * mask_probs[order]
    owner = weighted.argmax(axis=0)
    covered = binary[order].any(axis=0)
    instances: list[Instance] = []
    stuff = {name.lower() for name in stuff_classes}
    merged: dict[int, int] = {}
    for rank, index in enumerate(order):
        visible = (owner == rank) & binary[index] & covered
        if visible.sum() < max(settings.min_area, settings.overlap_keep * areas[index]):
            continue
        label_index = int(labels[candidates[index]])
        label = classes[label_index]
        if task == "panoptic" and label.lower() in stuff and label_index in merged:
            target = instances[merged[label_index]]
            target.mask = target.mask | visible
            target.__post_init__()
            continue
        instances.append(
            Instance(
                mask=visible,
                label=label,
                score=float(scores[index]),
                source="generic",
                category_index=label_index,
            )
        )
        if label.lower() in stuff:
            merged[label_index] = len(instances) - 1
    return instances, None


SEMANTIC_BAND_ROWS = 64


def _semantic(
    mask_logits: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    transform: ResizeTransform,
    settings: GenericSettings,
) -> tuple[list[Instance], np.ndarray]:
    """Per-pixel class = argmax_c sum_q p(c | q) * sigmoid(mask_q), background dropped: the
    official (Mask2Former) semantic inference. The masks are resized before the sigmoid; for
    the official models exactly as the official code does (bilinear to the input, then the
    class scores cropped and resized bicubically to the image), for ours straight to the image.
    Computed a band of rows at a time, so memory stays bounded for any image size."""
    official = transform.fit == "shortest"
    if official:
        (rows_map, cols_map), (rows_after, cols_after) = transform.official_resize_matrices(
            mask_logits.shape[-2:]
        )
    else:
        rows_map, cols_map = transform.upsampling_matrices(mask_logits.shape[-2:])
    class_probs = probs[:, :-1].astype(np.float32)  # (Q, C)
    # resize the columns of every mask once: (Q, g_h, W')
    wide = np.einsum("qhw,xw->qhx", mask_logits.astype(np.float32), cols_map, optimize=True)

    def class_scores(rows: np.ndarray) -> np.ndarray:
        """(C, len(rows), W') class scores of some resized rows."""
        masks = sigmoid(np.einsum("yh,qhx->qyx", rows, wide, optimize=True))
        return np.einsum("qc,qyx->cyx", class_probs, masks, optimize=True)

    if official:  # scores at the (bounded) input size, then resized to the image as upstream
        scores = np.concatenate(
            [
                class_scores(rows_map[top : top + SEMANTIC_BAND_ROWS])
                for top in range(0, len(rows_map), SEMANTIC_BAND_ROWS)
            ],
            axis=1,
        )
        scores = np.einsum("cyx,Xx->cyX", scores, cols_after, optimize=True)

        def band_scores(top: int) -> np.ndarray:
            rows = rows_after[top : top + SEMANTIC_BAND_ROWS]
            return np.einsum("Yy,cyx->cYx", rows, scores, optimize=True)
    else:

        def band_scores(top: int) -> np.ndarray:
            return class_scores(rows_map[top : top + SEMANTIC_BAND_ROWS])

    semantic = np.empty((transform.height, transform.width), dtype=np.int32)
    totals = np.zeros(len(classes))
    counts = np.zeros(len(classes), dtype=np.int64)
    for top in range(0, transform.height, SEMANTIC_BAND_ROWS):
        band = band_scores(top)
        labels = band.argmax(axis=0)
        semantic[top : top + band.shape[1]] = labels
        best = np.take_along_axis(band, labels[None], axis=0)[0]
        totals += np.bincount(labels.ravel(), weights=best.ravel(), minlength=len(classes))
        counts += np.bincount(labels.ravel(), minlength=len(classes))
    instances = []
    for index, name in enumerate(classes):
        if counts[index] >= settings.min_area:
            instances.append(
                Instance(
                    mask=semantic == index,
                    label=name,
                    score=min(float(totals[index] / counts[index]), 1.0),
                    source="generic",
                    category_index=index,
                )
            )
    return instances, semantic


def prompted_masks(group_logits: np.ndarray, transform: ResizeTransform) -> np.ndarray:
    """(G, g, g) group mask logits -> (G, H, W) bool masks of the original image."""
    return transform.logits_to_image(group_logits) > 0.0
