"""How closely a model reproduces the teacher's labels on frames it did not train on.

* generic: the teacher's confident queries are matched one-to-one to the model's confident
  queries by mask IoU (Hungarian); ``generic_miou`` averages the matched IoU over the teacher's
  queries (an unmatched one counts 0) and ``class_agreement`` is the share of them whose match
  has the same most likely class;
* prompted: the model answers the teacher's simulated prompts through the full
  ``Segmenter`` (a second click round with the model's own first answer as memory), and
  ``prompted_miou`` averages the IoU with the teacher's answers, per kind as well.

Masks are compared on the labels' frame grid. Run on the teacher itself this gives about 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..eval.metrics import mask_iou
from ..postprocess import softmax
from ..prompts import ClassNames, PromptSet
from ..segmenter import Segmenter
from .frame_grid import coverage, model_grid_to_frame_grid, to_frame_grid
from .prompts import answer_prompt
from .record import FrameLabel, frame_grid_hw


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, h, w) x (M, h, w) bool -> (N, M) IoU."""
    flat_a = a.reshape(len(a), -1).astype(np.float32)
    flat_b = b.reshape(len(b), -1).astype(np.float32)
    inter = flat_a @ flat_b.T
    union = flat_a.sum(1)[:, None] + flat_b.sum(1)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def agreement(
    segmenter: Segmenter,
    labels: Iterable[FrameLabel],
    *,
    classes: list[str],
    mask_size: int,
    objectness: float = 0.5,
) -> dict[str, object]:
    """Agreement of ``segmenter``'s model with the labels (see the module docstring)."""
    generic_ious: list[float] = []
    class_agree: list[float] = []
    prompted: dict[str, list[float]] = defaultdict(list)
    frames = 0
    for label in labels:
        frames += 1
        height, width = label.image.shape[:2]
        grid = frame_grid_hw(height, width, mask_size)
        encoded = segmenter.encode_image(label.image)
        outputs = segmenter.decode_outputs(encoded, PromptSet(classes=ClassNames(classes)))
        logits = outputs["object_masks"][0]
        rows, cols = model_grid_to_frame_grid(encoded.transform, logits.shape[-2:], grid)
        probs = softmax(segmenter.classify(outputs["object_embeds"][0], classes))
        mine = (1 - probs[:, -1]) >= objectness
        theirs = (1 - label.query_probs[:, -1].astype(np.float32)) >= objectness
        teacher_masks = label.query_logits[theirs] > 0
        teacher_classes = label.query_probs[theirs, :-1].argmax(-1)
        if theirs.any():
            ious = np.zeros(int(theirs.sum()))
            agree = np.zeros(int(theirs.sum()))
            if mine.any():
                own_masks = to_frame_grid(logits[mine], rows, cols) > 0
                own_classes = probs[mine, :-1].argmax(-1)
                pair = pairwise_iou(teacher_masks, own_masks)
                t_idx, s_idx = linear_sum_assignment(-pair)
                ious[t_idx] = pair[t_idx, s_idx]
                agree[t_idx] = own_classes[s_idx] == teacher_classes[t_idx]
            generic_ious.extend(ious.tolist())
            class_agree.extend(agree.tolist())
        _prompted_agreement(segmenter, encoded, label, grid, prompted)
    everything = [v for values in prompted.values() for v in values]
    return {
        "frames": frames,
        "generic_miou": _mean(generic_ious),
        "class_agreement": _mean(class_agree),
        "prompted_miou": _mean(everything),
        "prompted_miou_by_kind": {kind: _mean(values) for kind, values in sorted(prompted.items())},
    }


def _prompted_agreement(segmenter, encoded, label: FrameLabel, grid, prompted) -> None:
    first = [i for i, a in enumerate(label.answers) if a.memory_from < 0]
    if not first:
        return
    result = segmenter.decode(
        encoded, PromptSet(objects=[answer_prompt(label.answers[i]) for i in first])
    )
    answers = dict(zip(first, result.instances))
    second = [i for i, a in enumerate(label.answers) if a.memory_from in answers]
    if second:
        objects = [
            answer_prompt(label.answers[i], answers[label.answers[i].memory_from].memory)
            for i in second
        ]
        answers |= dict(
            zip(second, segmenter.decode(encoded, PromptSet(objects=objects)).instances)
        )
    for index, instance in answers.items():
        answer = label.answers[index]
        kind = f"{answer.kind}{answer.round}" if answer.kind == "click" else answer.kind
        mine = coverage(instance.mask, grid) >= 128
        prompted[kind].append(mask_iou(mine, answer.coverage >= 128))


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None
