"""The teacher pass over one frame: what a student learns from, with no ground truth anywhere.

For a frame the teacher (any model a :class:`~seem_ros.segmenter.Segmenter` loads: ours or a
converted official SEEM) gives

* its generic outputs for the vocabulary: per-query mask logits, class distributions and
  embeddings in its joint text space, for the queries that found anything;
* its answers to simulated prompts placed on its *own* masks: a click, then a corrective click
  with the first answer's memory (two interaction rounds), a box and a scribble per object;
* its answers to referring phrases, when phrases are given.

The prompt simulation is deterministic per frame key, so a resumed run labels a frame exactly
as the killed one would have.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..eval.clicks import next_click
from ..postprocess import generic_instances, softmax
from ..prompts import (
    Box,
    ClassNames,
    ObjectPrompt,
    Points,
    PromptSet,
    Scribble,
)
from ..results import Instance
from ..segmenter import EncodedImage, Segmenter, as_rgb_image
from .agreement import pairwise_iou
from .frame_grid import coverage, model_grid_to_frame_grid, to_frame_grid
from .record import FrameLabel, PromptedAnswer, frame_grid_hw

SCRIBBLE_POINTS = 5


@dataclass(frozen=True)
class LabelSettings:
    """What the teacher is asked per frame.

    Args:
        classes: the vocabulary of the generic outputs.
        phrases: referring phrases to ask (``max_phrase_queries`` of them per frame, sampled;
            of the answers, ``max_phrases`` that found something are kept, and a quarter as
            many that found nothing, so the student also learns to answer "not here").
        mask_size: long side of the frame-aligned mask grid.
        min_objectness: a query is stored when 1 - p(no object) reaches this.
        max_queries: at most this many queries per frame, the most confident first.
        objects_per_frame: objects that get simulated prompts, among the teacher's instances
            scoring at least ``object_score``.
    """

    classes: tuple[str, ...]
    phrases: tuple[str, ...] = ()
    mask_size: int = 64
    min_objectness: float = 0.05
    max_queries: int = 32
    objects_per_frame: int = 3
    object_score: float = 0.5
    max_phrase_queries: int = 64
    max_phrases: int = 8

    def to_dict(self) -> dict[str, object]:
        return {
            "classes": list(self.classes),
            "phrases": list(self.phrases),
            "mask_size": self.mask_size,
            "min_objectness": self.min_objectness,
            "max_queries": self.max_queries,
            "objects_per_frame": self.objects_per_frame,
            "object_score": self.object_score,
            "max_phrase_queries": self.max_phrase_queries,
            "max_phrases": self.max_phrases,
        }


def frame_rng(key: str) -> np.random.Generator:
    """A generator seeded by the frame key alone (stable across runs and machines)."""
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def click_points(clicks: list[tuple[float, float, bool]]) -> Points:
    coords = np.array([[x, y] for x, y, _ in clicks], dtype=np.float64)
    labels = np.array([int(positive) for _, _, positive in clicks])
    return Points(coords, labels)


def correction_click(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, bool] | None:
    """The simulated user's next click (at a pixel centre), or None when nothing is wrong."""
    click = next_click(pred, target)
    if click is None:
        return None
    return (click.x + 0.5, click.y + 0.5, click.positive)


def tight_box(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    x0, x1 = float(cols[0]), float(cols[-1] + 1)
    y0, y1 = float(rows[0]), float(rows[-1] + 1)
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return Box(x0, y0, x1, y1)


def scribble_through(mask: np.ndarray) -> Scribble | None:
    """A stroke along the mask's long axis through its most interior pixels: the mask's
    pixels are cut into bins along the principal axis and each bin contributes its deepest
    pixel (deepest = farthest from the mask's edge)."""
    import cv2

    ys, xs = np.nonzero(mask)
    if ys.size < SCRIBBLE_POINTS:
        return None
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    coords = np.stack([xs, ys], axis=1).astype(np.float64)
    centred = coords - coords.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    along = centred @ axes[0]
    order = np.argsort(along, kind="stable")
    points = []
    for part in np.array_split(order, SCRIBBLE_POINTS):
        best = part[np.argmax(depth[ys[part], xs[part]])]
        points.append((xs[best] + 0.5, ys[best] + 0.5))
    return Scribble(np.array(points))


class TeacherLabeler:
    """Labels frames with one teacher. Not thread-safe (one per worker / Ray actor)."""

    def __init__(self, segmenter: Segmenter, settings: LabelSettings) -> None:
        if not settings.classes:
            raise ValueError("the teacher needs a vocabulary (--classes)")
        self.segmenter = segmenter
        self.settings = settings
        self._matrices: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def from_path(
        cls, path: str | Path, settings: LabelSettings, *, device: str = "cpu"
    ) -> TeacherLabeler:
        return cls(Segmenter.from_pretrained(path, device=device), settings)

    def label(
        self, image: np.ndarray, *, key: str, source: str = "", index: int = 0, stamp_ns: int = 0
    ) -> FrameLabel:
        """One frame -> its :class:`FrameLabel` (raises ``ImageError`` on a bad image)."""
        rgb = as_rgb_image(image)
        settings = self.settings
        encoded = self.segmenter.encode_image(rgb)
        classes = list(settings.classes)
        outputs = self.segmenter.decode_outputs(encoded, PromptSet(classes=ClassNames(classes)))
        mask_logits = outputs["object_masks"][0]
        embeds = outputs["object_embeds"][0]
        class_logits = self.segmenter.classify(embeds, classes)
        probs = softmax(class_logits)
        objectness = 1.0 - probs[:, -1]
        order = np.argsort(-objectness, kind="stable")[: settings.max_queries]
        keep = order[objectness[order] >= settings.min_objectness]
        grid = frame_grid_hw(rgb.shape[0], rgb.shape[1], settings.mask_size)
        rows, cols = self._frame_matrices(encoded, mask_logits.shape[-2:], grid)
        query_logits = to_frame_grid(mask_logits[keep], rows, cols)
        unit = embeds[keep] / np.maximum(np.linalg.norm(embeds[keep], axis=-1, keepdims=True), 1e-6)
        instances, _ = generic_instances(
            mask_logits,
            class_logits,
            classes,
            encoded.transform,
            task="instance",
            stuff_classes=self.segmenter.card.stuff_classes,
            settings=self.segmenter.settings,
        )
        rng = frame_rng(key)
        answers = self._object_answers(encoded, instances, grid, query_logits, keep, rng)
        answers += self._phrase_answers(encoded, grid, rng)
        return FrameLabel(
            key=key,
            source=source,
            index=index,
            stamp_ns=stamp_ns,
            image=rgb,
            query_index=keep,
            query_logits=query_logits,
            query_probs=probs[keep],
            query_embeds=unit,
            answers=answers,
        )

    # ------------------------------------------------------------------ helpers
    def _frame_matrices(
        self, encoded: EncodedImage, model_grid: tuple[int, int], grid: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        transform = encoded.transform
        cache_key = (transform.height, transform.width, *model_grid)
        if cache_key not in self._matrices:
            self._matrices[cache_key] = model_grid_to_frame_grid(transform, model_grid, grid)
        return self._matrices[cache_key]

    def _object_answers(
        self,
        encoded: EncodedImage,
        instances: list[Instance],
        grid: tuple[int, int],
        query_logits: np.ndarray,
        query_index: np.ndarray,
        rng: np.random.Generator,
    ) -> list[PromptedAnswer]:
        settings = self.settings
        candidates = [i for i in instances if i.score >= settings.object_score and i.area > 0]
        if not candidates:
            return []
        count = min(settings.objects_per_frame, len(candidates))
        chosen = [candidates[i] for i in sorted(rng.choice(len(candidates), count, replace=False))]
        specs: list[tuple[str, ObjectPrompt, np.ndarray, int, np.ndarray]] = []
        first_clicks: dict[int, tuple[float, float, bool]] = {}
        query_masks = query_logits > 0
        for instance in chosen:
            target = instance.mask
            seed = _best_query(coverage(target, grid) >= 128, query_masks, query_index)
            click = correction_click(np.zeros_like(target), target)
            if click is not None:
                first_clicks[len(specs)] = click
                points = np.array([click[:2]])
                specs.append(
                    ("click", ObjectPrompt(points=click_points([click])), points, seed, target)
                )
            box = tight_box(target)
            if box is not None:
                corners = np.array([[box.x0, box.y0], [box.x1, box.y1]])
                specs.append(("box", ObjectPrompt(box=box), corners, seed, target))
            scribble = scribble_through(target)
            if scribble is not None:
                specs.append(
                    ("scribble", ObjectPrompt(scribbles=(scribble,)), scribble.coords, seed, target)
                )
        if not specs:
            return []
        result = self.segmenter.decode(encoded, PromptSet(objects=[s[1] for s in specs]))
        answers: list[PromptedAnswer] = []
        second: list[tuple[int, ObjectPrompt, list[tuple[float, float, bool]], int]] = []
        for index, ((kind, _, points, seed, target), answer) in enumerate(
            zip(specs, result.instances)
        ):
            answers.append(
                PromptedAnswer(
                    kind=kind,
                    points=points,
                    labels=np.ones(len(points), np.int8),
                    coverage=coverage(answer.mask, grid),
                    score=answer.score,
                    seed_query=seed,
                )
            )
            if kind == "click":
                fix = correction_click(answer.mask, target)
                if fix is not None:
                    clicks = [first_clicks[index], fix]
                    prompt = ObjectPrompt(points=click_points(clicks), memory=answer.memory)
                    second.append((index, prompt, clicks, seed))
        if second:
            refined = self.segmenter.decode(encoded, PromptSet(objects=[s[1] for s in second]))
            for (source_index, _, clicks, seed), answer in zip(second, refined.instances):
                answers.append(
                    PromptedAnswer(
                        kind="click",
                        points=np.array([c[:2] for c in clicks]),
                        labels=np.array([int(c[2]) for c in clicks], np.int8),
                        coverage=coverage(answer.mask, grid),
                        score=answer.score,
                        round=2,
                        memory_from=source_index,
                        seed_query=seed,
                    )
                )
        return answers

    def _phrase_answers(
        self, encoded: EncodedImage, grid: tuple[int, int], rng: np.random.Generator
    ) -> list[PromptedAnswer]:
        settings = self.settings
        if not settings.phrases or settings.max_phrases == 0:
            return []
        phrases = list(settings.phrases)
        if len(phrases) > settings.max_phrase_queries:
            picked = rng.choice(len(phrases), settings.max_phrase_queries, replace=False)
            phrases = [phrases[i] for i in sorted(picked)]
        result = self.segmenter.decode(
            encoded, PromptSet(objects=[ObjectPrompt(text=p) for p in phrases])
        )
        found = [i for i, answer in enumerate(result.instances) if answer.found]
        missed = [i for i, answer in enumerate(result.instances) if not answer.found]
        keep_found = _sample(found, settings.max_phrases, rng)
        keep_missed = _sample(missed, max(1, settings.max_phrases // 4), rng)
        empty_points = np.zeros((0, 2), np.float32)
        return [
            PromptedAnswer(
                kind="phrase",
                points=empty_points,
                labels=np.zeros(0, np.int8),
                coverage=coverage(result.instances[i].mask, grid),
                score=result.instances[i].score,
                text=phrases[i],
            )
            for i in sorted(keep_found + keep_missed)
        ]


def _sample(indices: list[int], count: int, rng: np.random.Generator) -> list[int]:
    if len(indices) <= count:
        return list(indices)
    return [indices[i] for i in rng.choice(len(indices), count, replace=False)]


def _best_query(target: np.ndarray, query_masks: np.ndarray, query_index: np.ndarray) -> int:
    """The stored query whose mask overlaps the target best (IoU >= 0.5), else -1."""
    if len(query_masks) == 0 or not target.any():
        return -1
    iou = pairwise_iou(target[None], query_masks)[0]
    best = int(np.argmax(iou))
    return int(query_index[best]) if iou[best] >= 0.5 else -1
