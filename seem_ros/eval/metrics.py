"""Segmentation metrics used by the SEEM paper's benchmarks.

Every function takes numpy arrays. Binary masks are HxW arrays of ``bool`` (integer or float
arrays holding only 0 and 1 are accepted too; anything else is rejected rather than thresholded,
so that a probability map passed by mistake fails loudly).

- Referring / generic masks: :func:`mask_iou`, mIoU and cIoU (:class:`IouAccumulator`).
- Interactive segmentation: NoC@threshold (:func:`number_of_clicks`, :func:`mean_noc`).
- Panoptic segmentation: PQ / SQ / RQ after Kirillov et al. (:class:`PanopticAccumulator`).
- Semantic segmentation: confusion-matrix mIoU (:class:`SemanticAccumulator`).
- Video object segmentation: DAVIS J, F and J&F (:func:`j_and_f`, :class:`JfAccumulator`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

Category = Hashable
"""A panoptic category label: any hashable value, typically an ``int`` id or a ``str`` name."""

PANOPTIC_MATCH_IOU = 0.5
"""A predicted and a ground-truth segment match when their IoU is strictly above this."""


# --------------------------------------------------------------------------- mask validation


def as_mask(array: np.ndarray, name: str = "mask") -> np.ndarray:
    """Return ``array`` as an HxW ``bool`` mask, or raise ``ValueError`` saying what is wrong."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D HxW mask, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must be a bool mask, got dtype {array.dtype}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must be a binary mask; it holds values other than 0 and 1")
    return array.astype(bool)


def as_mask_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction and its ground truth: both binary masks of the same shape."""
    pred_mask, gt_mask = as_mask(pred, "pred"), as_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred shape {pred_mask.shape} differs from gt shape {gt_mask.shape}")
    return pred_mask, gt_mask


# --------------------------------------------------------------------------- IoU, mIoU, cIoU


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts of ``pred & gt`` and ``pred | gt``."""
    pred_mask, gt_mask = as_mask_pair(pred, gt)
    return int(np.count_nonzero(pred_mask & gt_mask)), int(np.count_nonzero(pred_mask | gt_mask))


def _iou_from_counts(intersection: int, union: int) -> float:
    # Two empty masks agree perfectly; every benchmark we follow scores that as 1.
    return 1.0 if union == 0 else intersection / union


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two binary masks; 1.0 when both are empty."""
    return _iou_from_counts(*intersection_union(pred, gt))


def mean_iou(ious: Iterable[float]) -> float:
    """mIoU: the plain mean of per-sample IoUs (each sample weighs the same)."""
    values = list(ious)
    if not values:
        raise ValueError("mean_iou needs at least one IoU")
    return float(np.mean(values))


def cumulative_iou(pairs: Iterable[tuple[int, int]]) -> float:
    """cIoU: total intersection over total union of ``(intersection, union)`` pairs.

    Referring-segmentation papers report it next to mIoU; it weighs samples by their size, so
    large objects dominate. 1.0 when every union is empty.
    """
    total_intersection, total_union, count = 0, 0, 0
    for intersection, union in pairs:
        if not 0 <= intersection <= union:
            raise ValueError(
                f"need 0 <= intersection <= union, got intersection={intersection}, union={union}"
            )
        total_intersection += intersection
        total_union += union
        count += 1
    if count == 0:
        raise ValueError("cumulative_iou needs at least one (intersection, union) pair")
    return _iou_from_counts(total_intersection, total_union)


@dataclass
class IouAccumulator:
    """Collects mask pairs over a data set and reports both mIoU and cIoU."""

    ious: list[float] = field(default_factory=list)
    counts: list[tuple[int, int]] = field(default_factory=list)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> float:
        """Score one prediction against its ground truth; returns that sample's IoU."""
        intersection, union = intersection_union(pred, gt)
        iou = _iou_from_counts(intersection, union)
        self.counts.append((intersection, union))
        self.ious.append(iou)
        return iou

    @property
    def count(self) -> int:
        return len(self.ious)

    @property
    def miou(self) -> float:
        return mean_iou(self.ious)

    @property
    def ciou(self) -> float:
        return cumulative_iou(self.counts)


# --------------------------------------------------------------------------- NoC


def number_of_clicks(
    ious_per_click: Sequence[float], threshold: float, max_clicks: int = 20
) -> int:
    """NoC@threshold: how many clicks it took for the IoU to first reach ``threshold``.

    ``ious_per_click[k]`` is the IoU after click ``k + 1``. Returns ``max_clicks`` when the
    threshold is never reached within the first ``max_clicks`` clicks, as in RITM / SEEM.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")
    if len(ious_per_click) == 0:
        raise ValueError("ious_per_click is empty; simulate at least one click")
    for clicks, iou in enumerate(ious_per_click[:max_clicks], start=1):
        if iou >= threshold:
            return clicks
    return max_clicks


def mean_noc(runs: Iterable[Sequence[float]], threshold: float, max_clicks: int = 20) -> float:
    """Mean NoC@threshold over objects; each run is one object's IoU-per-click list."""
    counts = [number_of_clicks(run, threshold, max_clicks) for run in runs]
    if not counts:
        raise ValueError("mean_noc needs at least one run")
    return float(np.mean(counts))


# --------------------------------------------------------------------------- panoptic quality


@dataclass(frozen=True)
class CategoryPq:
    """Panoptic quality of one category, with the match counts it came from."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class PqSummary:
    """PQ / SQ / RQ averaged over ``num_categories`` categories (NaN when there are none)."""

    pq: float
    sq: float
    rq: float
    num_categories: int


@dataclass(frozen=True)
class PanopticResult:
    """Overall and per-category panoptic quality.

    ``things`` and ``stuff`` are ``None`` when the accumulator was not told which categories
    are things.
    """

    all: PqSummary
    things: PqSummary | None
    stuff: PqSummary | None
    per_category: dict[Category, CategoryPq]


@dataclass
class _CategoryCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    iou_sum: float = 0.0

    def scores(self) -> CategoryPq:
        detections = self.tp + 0.5 * self.fp + 0.5 * self.fn
        sq = self.iou_sum / self.tp if self.tp else 0.0
        rq = self.tp / detections
        return CategoryPq(pq=sq * rq, sq=sq, rq=rq, tp=self.tp, fp=self.fp, fn=self.fn)


def _as_id_map(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D HxW id map, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer ids, got dtype {array.dtype}")
    return array


def _segment_categories(
    ids: np.ndarray, categories: Mapping[int, Category], void_id: int, name: str
) -> list[Category | None]:
    """Category of each id in ``ids`` (``None`` for the void id)."""
    result: list[Category | None] = []
    for segment_id in ids.tolist():
        if segment_id == void_id:
            result.append(None)
        elif segment_id in categories:
            result.append(categories[segment_id])
        else:
            raise ValueError(f"{name} id {segment_id} appears in the id map but has no category")
    return result


def _summarize(scores: Iterable[CategoryPq]) -> PqSummary:
    selected = list(scores)
    if not selected:
        return PqSummary(pq=math.nan, sq=math.nan, rq=math.nan, num_categories=0)
    return PqSummary(
        pq=float(np.mean([s.pq for s in selected])),
        sq=float(np.mean([s.sq for s in selected])),
        rq=float(np.mean([s.rq for s in selected])),
        num_categories=len(selected),
    )


class PanopticAccumulator:
    """Panoptic quality (Kirillov et al., CVPR 2019), accumulated per category over images.

    A segment is an id in an HxW id map plus an entry ``id -> category`` in a dict. Pixels with
    ``void_id`` are unlabeled: in the ground truth they are ignored (removed from the union,
    and a predicted segment lying mostly on them is not a false positive); in the prediction
    they simply belong to no segment.

    Args:
        thing_categories: categories that are countable things; all others are stuff. When
            ``None``, only the overall summary is reported.
        void_id: the id of unlabeled pixels in both id maps.
    """

    def __init__(
        self, *, thing_categories: Iterable[Category] | None = None, void_id: int = 0
    ) -> None:
        self.thing_categories = None if thing_categories is None else frozenset(thing_categories)
        self.void_id = void_id
        self._counts: dict[Category, _CategoryCounts] = {}

    def add(
        self,
        pred_ids: np.ndarray,
        pred_categories: Mapping[int, Category],
        gt_ids: np.ndarray,
        gt_categories: Mapping[int, Category],
    ) -> None:
        """Match one image's predicted segments to its ground-truth segments."""
        pred_ids = _as_id_map(pred_ids, "pred_ids")
        gt_ids = _as_id_map(gt_ids, "gt_ids")
        if pred_ids.shape != gt_ids.shape:
            raise ValueError(f"pred_ids shape {pred_ids.shape} differs from gt_ids {gt_ids.shape}")

        gt_unique, gt_index = np.unique(gt_ids, return_inverse=True)
        pred_unique, pred_index = np.unique(pred_ids, return_inverse=True)
        gt_cats = _segment_categories(gt_unique, gt_categories, self.void_id, "gt")
        pred_cats = _segment_categories(pred_unique, pred_categories, self.void_id, "pred")

        # overlap[g, p] = number of pixels with gt id gt_unique[g] and pred id pred_unique[p].
        overlap = np.bincount(
            gt_index.ravel() * len(pred_unique) + pred_index.ravel(),
            minlength=len(gt_unique) * len(pred_unique),
        ).reshape(len(gt_unique), len(pred_unique))
        gt_area = overlap.sum(axis=1)
        pred_area = overlap.sum(axis=0)
        void_rows = [g for g, cat in enumerate(gt_cats) if cat is None]
        pred_on_void = overlap[void_rows].sum(axis=0)

        matched_gt: set[int] = set()
        matched_pred: set[int] = set()
        for g, p in zip(*np.nonzero(overlap), strict=True):
            category = gt_cats[g]
            if category is None or pred_cats[p] != category:
                continue
            intersection = overlap[g, p]
            union = gt_area[g] + pred_area[p] - intersection - pred_on_void[p]
            iou = intersection / union
            # IoU > 0.5 makes matches unique, so no assignment problem needs solving.
            if iou > PANOPTIC_MATCH_IOU:
                counts = self._counts.setdefault(category, _CategoryCounts())
                counts.tp += 1
                counts.iou_sum += float(iou)
                matched_gt.add(int(g))
                matched_pred.add(int(p))

        for g, category in enumerate(gt_cats):
            if category is not None and g not in matched_gt:
                self._counts.setdefault(category, _CategoryCounts()).fn += 1
        for p, category in enumerate(pred_cats):
            if category is None or p in matched_pred:
                continue
            if pred_on_void[p] / pred_area[p] > PANOPTIC_MATCH_IOU:
                continue
            self._counts.setdefault(category, _CategoryCounts()).fp += 1

    def compute(self) -> PanopticResult:
        """PQ, SQ and RQ per category, and their means over the categories seen so far."""
        per_category = {category: counts.scores() for category, counts in self._counts.items()}
        things = stuff = None
        if self.thing_categories is not None:
            things = _summarize(s for c, s in per_category.items() if c in self.thing_categories)
            stuff = _summarize(s for c, s in per_category.items() if c not in self.thing_categories)
        return PanopticResult(
            all=_summarize(per_category.values()),
            things=things,
            stuff=stuff,
            per_category=per_category,
        )


def panoptic_quality(
    pred_ids: np.ndarray,
    pred_categories: Mapping[int, Category],
    gt_ids: np.ndarray,
    gt_categories: Mapping[int, Category],
    *,
    thing_categories: Iterable[Category] | None = None,
    void_id: int = 0,
) -> PanopticResult:
    """Panoptic quality of a single image; see :class:`PanopticAccumulator` for a data set."""
    accumulator = PanopticAccumulator(thing_categories=thing_categories, void_id=void_id)
    accumulator.add(pred_ids, pred_categories, gt_ids, gt_categories)
    return accumulator.compute()


# --------------------------------------------------------------------------- semantic mIoU


class SemanticAccumulator:
    """Semantic-segmentation mIoU from a confusion matrix summed over images.

    Args:
        num_classes: labels are ``0 .. num_classes - 1``.
        ignore_index: ground-truth pixels with this label are not scored.
    """

    def __init__(self, num_classes: int, *, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # confusion[g, p] counts pixels of ground-truth class g predicted as class p.
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, pred_labels: np.ndarray, gt_labels: np.ndarray) -> None:
        """Add one image's HxW label maps."""
        pred = _as_id_map(pred_labels, "pred_labels")
        gt = _as_id_map(gt_labels, "gt_labels")
        if pred.shape != gt.shape:
            raise ValueError(f"pred_labels shape {pred.shape} differs from gt_labels {gt.shape}")
        scored = gt != self.ignore_index
        gt, pred = gt[scored].astype(np.int64), pred[scored].astype(np.int64)
        for labels, name in ((gt, "gt_labels"), (pred, "pred_labels")):
            bad = (labels < 0) | (labels >= self.num_classes)
            if bad.any():
                raise ValueError(
                    f"{name} holds label {labels[bad][0]} outside 0..{self.num_classes - 1} "
                    f"(ignore_index is {self.ignore_index})"
                )
        self.confusion += np.bincount(
            gt * self.num_classes + pred, minlength=self.num_classes**2
        ).reshape(self.num_classes, self.num_classes)

    def per_class_iou(self) -> np.ndarray:
        """IoU of each class; NaN for classes absent from both prediction and ground truth."""
        true_positive = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(axis=0) + self.confusion.sum(axis=1) - true_positive
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, true_positive / union, np.nan)

    @property
    def miou(self) -> float:
        """Mean IoU over the classes that appear in the prediction or the ground truth."""
        ious = self.per_class_iou()
        if np.isnan(ious).all():
            raise ValueError("no scored pixels yet; add label maps first")
        return float(np.nanmean(ious))

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        if total == 0:
            raise ValueError("no scored pixels yet; add label maps first")
        return float(np.trace(self.confusion) / total)


def semantic_miou(
    pred_labels: np.ndarray, gt_labels: np.ndarray, num_classes: int, *, ignore_index: int = 255
) -> float:
    """mIoU of a single pair of label maps; see :class:`SemanticAccumulator` for a data set."""
    accumulator = SemanticAccumulator(num_classes, ignore_index=ignore_index)
    accumulator.add(pred_labels, gt_labels)
    return accumulator.miou


# --------------------------------------------------------------------------- video J and F


def region_similarity_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """DAVIS region similarity J: the IoU of the masks (1.0 when both are empty)."""
    return mask_iou(pred, gt)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide inner boundary of a mask: foreground pixels with a background 4-neighbour.

    The image border counts as background, so an object touching it has a boundary there.
    """
    mask = as_mask(mask)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(
        mask.astype(np.uint8), cross, borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).astype(bool)
    return mask & ~eroded


def _disk(radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS contour accuracy F: the F-measure of boundary precision and recall.

    A boundary pixel of one mask counts as matched when a boundary pixel of the other lies
    within ``ceil(bound_th * image diagonal)`` pixels. Both masks empty -> 1.0; exactly one
    empty -> 0.0.
    """
    if not 0.0 < bound_th < 1.0:
        raise ValueError(f"bound_th is a fraction of the image diagonal in (0, 1), got {bound_th}")
    pred_mask, gt_mask = as_mask_pair(pred, gt)
    tolerance = math.ceil(bound_th * math.hypot(*pred_mask.shape))
    pred_boundary, gt_boundary = boundary_map(pred_mask), boundary_map(gt_mask)
    pred_count, gt_count = int(pred_boundary.sum()), int(gt_boundary.sum())
    if pred_count == 0 and gt_count == 0:
        return 1.0
    if pred_count == 0 or gt_count == 0:
        return 0.0

    disk = _disk(tolerance)
    near_pred = cv2.dilate(pred_boundary.astype(np.uint8), disk).astype(bool)
    near_gt = cv2.dilate(gt_boundary.astype(np.uint8), disk).astype(bool)
    precision = np.count_nonzero(pred_boundary & near_gt) / pred_count
    recall = np.count_nonzero(gt_boundary & near_pred) / gt_count
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def j_and_f(
    pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray], bound_th: float = 0.008
) -> dict[str, float]:
    """J, F and their mean J&F for one object over a clip (each the mean over frames).

    Returns ``{"j": ..., "f": ..., "jf": ...}``. Frames are HxW masks, or a TxHxW array.
    """
    if len(pred_frames) != len(gt_frames):
        raise ValueError(f"{len(pred_frames)} predicted frames but {len(gt_frames)} gt frames")
    if len(gt_frames) == 0:
        raise ValueError("j_and_f needs at least one frame")
    j = float(np.mean([region_similarity_j(p, g) for p, g in zip(pred_frames, gt_frames)]))
    f = float(np.mean([boundary_f_measure(p, g, bound_th) for p, g in zip(pred_frames, gt_frames)]))
    return {"j": j, "f": f, "jf": (j + f) / 2}


@dataclass
class JfAccumulator:
    """Averages per-object J, F and J&F over objects and clips, as the DAVIS benchmark does."""

    bound_th: float = 0.008
    scores: list[dict[str, float]] = field(default_factory=list)

    def add(
        self, pred_frames: Sequence[np.ndarray], gt_frames: Sequence[np.ndarray]
    ) -> dict[str, float]:
        """Score one object's clip; returns its ``{"j", "f", "jf"}``."""
        result = j_and_f(pred_frames, gt_frames, self.bound_th)
        self.scores.append(result)
        return result

    def _mean(self, key: str) -> float:
        if not self.scores:
            raise ValueError("no clips added yet")
        return float(np.mean([score[key] for score in self.scores]))

    @property
    def count(self) -> int:
        return len(self.scores)

    @property
    def j(self) -> float:
        return self._mean("j")

    @property
    def f(self) -> float:
        return self._mean("f")

    @property
    def jf(self) -> float:
        return self._mean("jf")
