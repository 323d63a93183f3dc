"""The project's benchmark: SEEM's tasks measured the paper's way on the procedural world.

Every number comes from the chosen split (``val`` or ``test``), fixed by seed; nothing here is
tuned on ``test``. Sections and their keys:

* interactive: ``noc85``, ``noc90`` (max 20 simulated clicks, first at the object's most interior
  point, then in the largest error region; the previous mask + memory fed back each round),
  ``miou_1click``, ``miou_5click``; with the segmenter's negative-click cut on (the default),
  also ``noc85_model_only``, ``noc90_model_only``, ``miou_5click_model_only`` without it;
* referring: ``miou``, ``ciou`` over the scenes' referring phrases, and ``miou_things`` /
  ``miou_stuff`` for the phrases naming objects and those naming stuff ("the wall"); with the
  segmenter's phrase grounding on (the default for our models), also ``miou_ungrounded`` and
  ``miou_things_ungrounded`` with the group masks alone;
* generic: ``pq`` (panoptic, things + stuff) and ``miou`` (semantic) with the world's class names;
* video: ``jf`` (one click on the first frame, then memory + reference region frame to frame) and
  ``jf_no_memory`` (same clips, reference region only);
* openvocab: ``miou`` on phrases naming held-out colour x category pairs;
* composition: ``miou`` on text + one click where each alone is ambiguous;
* video_hard: on hard clips (own seeds: look-alike twins crossing paths, full occlusion for
  several frames, strong lighting change, camera shake; :mod:`seem_ros.data.hard_clips`), both
  twins followed from one click: ``jf`` with the tracker and its memory, ``jf_no_memory`` with a
  frame-0 reference region alone (as in video), ``jf_memory_prompt`` with video's memory
  protocol;
* paraphrase: referring ``miou`` on the phrases of its own scenes said another way (the
  benchmark's templates, never trained on; :mod:`seem_ros.data.paraphrase`; each phrase once
  per kind of rephrasing that changes it), ``miou_original`` on the same phrases as generated,
  and ``miou_<kind>`` per kind;
* robustness (``seem-ros eval --robustness``): 1-click mIoU, referring mIoU (things / stuff), PQ
  and J&F on variants of the world with their own seeds (:mod:`seem_ros.eval.robustness`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data import (
    STUFF_CATEGORIES,
    THING_CATEGORIES,
    SceneDataset,
    class_names,
    render_clip,
    render_composition_case,
    render_openvocab_case,
    render_scene,
    scene_seed,
)
from ..data.hard_clips import render_hard_clip
from ..data.paraphrase import KINDS, paraphrase
from ..prompts import ClassNames, MemoryPrompt, ObjectPrompt, Points, PromptSet, ReferenceRegion
from ..segmenter import EncodedImage, Segmenter
from .clicks import Click, simulate_clicks
from .metrics import (
    IouAccumulator,
    JfAccumulator,
    PanopticAccumulator,
    SemanticAccumulator,
    number_of_clicks,
)

SECTIONS = (
    "interactive",
    "referring",
    "generic",
    "video",
    "openvocab",
    "composition",
    "video_hard",
    "paraphrase",
)
"""The sections :meth:`Benchmark.run` measures by default (``robustness`` only on request)."""


@dataclass(frozen=True)
class BenchmarkSize:
    scenes: int = 50
    objects_per_scene: int = 3
    phrases_per_scene: int = 3
    clips: int = 8
    clip_frames: int = 30
    objects_per_clip: int = 2
    cases: int = 50
    max_clicks: int = 20


def _clicks_to_points(clicks: list[Click]) -> Points:
    coords = np.array([[c.x + 0.5, c.y + 0.5] for c in clicks])
    return Points(coords, np.array([int(c.positive) for c in clicks]))


class Benchmark:
    def __init__(
        self,
        segmenter: Segmenter,
        *,
        split: str = "test",
        size: BenchmarkSize = BenchmarkSize(),
        progress: bool = True,
        robustness_scenes: int | None = None,
        robustness_clips: int | None = None,
        frame_size: int | None = None,
    ) -> None:
        """``robustness_scenes`` / ``robustness_clips``: fewer scenes / clips for each
        robustness variant than the other sections use (default: the same). ``frame_size``:
        the side of the rendered square frames (default: the model's input size); give the
        same size to compare models of different input sizes on the same frames (a student
        and its teacher)."""
        if split == "train":
            raise ValueError("the benchmark runs on val or test, never on train")
        self.segmenter = segmenter
        self.split = split
        self.size = size
        self.progress = progress
        self.robustness_scenes = robustness_scenes
        self.robustness_clips = robustness_clips
        self.frame_size = frame_size or segmenter.image_size
        self.scenes = SceneDataset(split, size.scenes, size=(self.frame_size, self.frame_size))
        self.vocabulary = list(class_names())

    def _bar(self, iterable: Any, desc: str, total: int | None = None) -> Any:
        return tqdm(iterable, desc=desc, total=total, disable=not self.progress, leave=False)

    # -------------------------------------------------------------------- sections
    def interactive(self) -> dict[str, float]:
        """The segmenter as configured; when it cuts masks by negative clicks or keeps them
        continuous, the same rounds are also run without either (``*_model_only``: the model's
        own masks)."""
        result = self._click_rounds("interactive")
        if self.segmenter.negative_click_cut or self.segmenter.object_continuity:
            with self.segmenter.network_masks():
                model_only = self._click_rounds("interactive (model only)")
            result |= {
                f"{key}_model_only": value
                for key, value in model_only.items()
                if key in ("noc85", "noc90", "miou_5click")
            }
        return result

    def _click_rounds(self, description: str) -> dict[str, float]:
        runs: list[list[float]] = []
        for index in self._bar(range(self.size.scenes), description):
            scene = self.scenes[index]
            encoded = self.segmenter.encode_image(scene.image)
            things = sorted(scene.thing_segments, key=lambda s: -s.area)[
                : self.size.objects_per_scene
            ]
            for segment in things:
                runs.append(
                    simulate_clicks(
                        self._click_predictor(encoded),
                        segment.mask,
                        max_clicks=self.size.max_clicks,
                    )
                )
        return {
            "noc85": float(
                np.mean([number_of_clicks(r, 0.85, self.size.max_clicks) for r in runs])
            ),
            "noc90": float(
                np.mean([number_of_clicks(r, 0.90, self.size.max_clicks) for r in runs])
            ),
            "miou_1click": float(np.mean([r[0] for r in runs])),
            "miou_5click": float(np.mean([r[min(4, len(r) - 1)] for r in runs])),
            "objects": len(runs),
        }

    def _click_predictor(
        self, encoded: EncodedImage
    ) -> Callable[[list[Click], np.ndarray | None], np.ndarray]:
        state: dict[str, MemoryPrompt | None] = {"memory": None}

        def predict(clicks: list[Click], _previous: np.ndarray | None) -> np.ndarray:
            prompt = ObjectPrompt(points=_clicks_to_points(clicks), memory=state["memory"])
            instance = self.segmenter.decode(encoded, prompt).instances[0]
            state["memory"] = instance.memory
            return instance.mask

        return predict

    def referring(self) -> dict[str, float]:
        """The segmenter as configured; when it grounds phrases in the generic queries, the
        same phrases are also scored with the group masks alone (``*_ungrounded``)."""
        grounding = self.segmenter.phrase_grounding
        scores, ungrounded = ReferringScores(), ReferringScores()
        for index in self._bar(range(self.size.scenes), "referring"):
            scene = self.scenes[index]
            encoded = self.segmenter.encode_image(scene.image)
            self.refer_scene(scene, encoded, scores)
            if grounding:
                self.segmenter.phrase_grounding = False
                try:
                    self.refer_scene(scene, encoded, ungrounded)
                finally:
                    self.segmenter.phrase_grounding = True
        result = scores.summary()
        if grounding:
            result |= {
                f"{key}_ungrounded": value
                for key, value in ungrounded.summary().items()
                if key in ("miou", "miou_things")
            }
        return result

    def benchmark_phrases(self, scene: Any) -> list[Any]:
        """The scene's phrases the referring section scores (an even spread, stuff included)."""
        return scene.phrases[:: max(1, len(scene.phrases) // self.size.phrases_per_scene)][
            : self.size.phrases_per_scene
        ]

    def refer_scene(self, scene: Any, encoded: EncodedImage, scores: ReferringScores) -> None:
        phrases = self.benchmark_phrases(scene)
        if not phrases:
            return
        result = self.segmenter.decode(
            encoded, PromptSet(objects=[ObjectPrompt(text=p.text) for p in phrases])
        )
        for phrase, instance in zip(phrases, result.instances):
            scores.add(instance.mask, scene.segment(phrase.target_id))

    def paraphrase(self) -> dict[str, float]:
        """Referring on phrases said another way (own scenes, the benchmark's templates)."""
        image_size = self.frame_size
        original, rephrased = IouAccumulator(), IouAccumulator()
        by_kind = {kind: IouAccumulator() for kind in KINDS}
        for index in self._bar(range(self.size.scenes), "paraphrase"):
            seed = scene_seed(self.split, index, stream="paraphrase")
            scene = render_scene(seed, size=(image_size, image_size), split=self.split)
            rng = np.random.default_rng([seed, 1])
            phrases = self.benchmark_phrases(scene)
            if not phrases:
                continue
            texts, targets, kinds = [], [], []
            for phrase in phrases:
                texts.append(phrase.text)
                targets.append(phrase.target_id)
                kinds.append(None)
                for kind in KINDS:
                    text = paraphrase(phrase.text, rng, kind=kind, templates="bench")
                    if text == phrase.text:  # e.g. no word of it has a synonym
                        continue
                    texts.append(text)
                    targets.append(phrase.target_id)
                    kinds.append(kind)
            result = self.segmenter.decode(
                self.segmenter.encode_image(scene.image),
                PromptSet(objects=[ObjectPrompt(text=t) for t in texts]),
            )
            for kind, target, instance in zip(kinds, targets, result.instances):
                gt = scene.instance_mask(target)
                if kind is None:
                    original.add(instance.mask, gt)
                else:
                    rephrased.add(instance.mask, gt)
                    by_kind[kind].add(instance.mask, gt)
        report: dict[str, float] = {
            "miou": _miou_or_none(rephrased),
            "miou_original": _miou_or_none(original),
            "phrases": rephrased.count,
        }
        report |= {f"miou_{kind}": _miou_or_none(acc) for kind, acc in by_kind.items()}
        return report

    def generic(self) -> dict[str, float]:
        scores = self.generic_scores()
        for index in self._bar(range(self.size.scenes), "generic"):
            scene = self.scenes[index]
            self.generic_scene(scene, self.segmenter.encode_image(scene.image), scores)
        return scores.summary()

    def generic_scores(self) -> GenericScores:
        return GenericScores(
            PanopticAccumulator(thing_categories=THING_CATEGORIES),
            SemanticAccumulator(len(self.vocabulary)),
        )

    def generic_scene(self, scene: Any, encoded: EncodedImage, scores: GenericScores) -> None:
        classes = ClassNames(tuple(self.vocabulary))
        result = self.segmenter.decode(encoded, PromptSet(classes=classes), task="panoptic")
        pred_categories = {k: inst.label for k, inst in enumerate(result.instances, start=1)}
        gt_categories = {s.id: s.category for s in scene.segments}
        scores.panoptic.add(
            result.instance_ids.astype(np.int64),
            pred_categories,
            scene.segment_ids,
            gt_categories,
        )
        sem = self.segmenter.decode(encoded, PromptSet(classes=classes), task="semantic").semantic
        scores.semantic.add(sem, scene.semantic_map(self.vocabulary))

    def video(self) -> dict[str, float]:
        with_memory, without_memory = JfAccumulator(), JfAccumulator()
        image_size = self.frame_size
        for index in self._bar(range(self.size.clips), "video"):
            clip = render_clip(
                scene_seed(self.split, index, stream="clip"),
                n_frames=self.size.clip_frames,
                size=(image_size, image_size),
                split=self.split,
            )
            first = clip.frames[0]
            targets = sorted(first.thing_segments, key=lambda s: -s.area)[
                : self.size.objects_per_clip
            ]
            self.follow(clip.frames, [t.id for t in targets], with_memory, without_memory)
        return _jf_report(with_memory, without_memory)

    def video_hard(self) -> dict[str, float]:
        """Hard clips (own seeds); both look-alike twins are followed from one click each on
        frame 0. ``jf``: the tracker (:class:`~seem_ros.tracking.Tracker`: memory prompts, the
        motion of the last confident frames, re-finding a lost object by its reference crop);
        ``jf_no_memory``: a reference region from frame 0 alone, as in the video section;
        ``jf_memory_prompt``: the video section's memory protocol (memory + frame-0 reference,
        each frame's answer carried as is), the model's memory without the tracker."""
        tracked, memory_prompt, without_memory = JfAccumulator(), JfAccumulator(), JfAccumulator()
        image_size = self.frame_size
        for index in self._bar(range(self.size.clips), "video_hard"):
            clip = render_hard_clip(
                scene_seed(self.split, index, stream="hard_clip"),
                n_frames=self.size.clip_frames,
                size=(image_size, image_size),
                split=self.split,
            )
            visible = {s.id for s in clip.frames[0].thing_segments}
            targets = [t for t in clip.targets if t in visible]
            self.follow(clip.frames, targets, memory_prompt, without_memory)
            for track_id, masks in self.track(clip.frames, targets).items():
                tracked.add(masks, [self._track_mask(f, track_id) for f in clip.frames])
        return _jf_report(tracked, without_memory) | {"jf_memory_prompt": memory_prompt.jf}

    def track(self, frames: list[Any], track_ids: list[int]) -> dict[int, list[np.ndarray]]:
        """Run the tracker over the frames, each listed object added by one click at its most
        interior pixel of frame 0; its mask per frame (empty where the tracker does not see
        it)."""
        from ..tracking import Tracker

        tracker = Tracker(self.segmenter)
        ours = {
            tracker.add_object(
                ObjectPrompt(points=_most_interior_click(frames[0].segment_ids == track_id))
            ): track_id
            for track_id in track_ids
        }
        masks: dict[int, list[np.ndarray]] = {track_id: [] for track_id in track_ids}
        for frame in frames:
            result = tracker.step(frame.image)
            seen = {i.track_id: i.mask for i in result.instances}
            for mine, track_id in ours.items():
                masks[track_id].append(seen.get(mine, np.zeros(frame.hw, dtype=bool)))
        return masks

    def follow(
        self,
        frames: list[Any],
        track_ids: list[int],
        with_memory: JfAccumulator,
        without_memory: JfAccumulator | None,
    ) -> None:
        """Follow each listed track from its mask in frame 0, with memory and (when an
        accumulator is given) without it."""
        for track_id in track_ids:
            first_mask = frames[0].segment_ids == track_id
            gt = [self._track_mask(frame, track_id) for frame in frames]
            with_memory.add(self._propagate(frames, first_mask, use_memory=True), gt)
            if without_memory is not None:
                without_memory.add(self._propagate(frames, first_mask, use_memory=False), gt)

    @staticmethod
    def _track_mask(frame: Any, track_id: int) -> np.ndarray:
        return frame.segment_ids == track_id

    def _propagate(
        self, frames: list[Any], first_mask: np.ndarray, *, use_memory: bool
    ) -> list[np.ndarray]:
        """Click once on frame 0, then follow the object; returns one mask per frame."""
        click = _most_interior_click(first_mask)
        first = self.segmenter.segment(frames[0].image, ObjectPrompt(points=click)).instances[0]
        reference = ReferenceRegion(frames[0].image, first.mask) if first.mask.any() else None
        masks = [first.mask]
        memory = first.memory
        for frame in frames[1:]:
            parts: dict[str, Any] = {}
            if use_memory and memory is not None:
                parts["memory"] = memory
            if reference is not None:
                parts["reference"] = reference
            if not parts:
                masks.append(np.zeros_like(first.mask))
                continue
            instance = self.segmenter.segment(frame.image, ObjectPrompt(**parts)).instances[0]
            masks.append(instance.mask)
            memory = instance.memory
        return masks

    def openvocab(self) -> dict[str, float]:
        accumulator = IouAccumulator()
        image_size = self.frame_size
        for index in self._bar(range(self.size.cases), "openvocab"):
            case = render_openvocab_case(
                scene_seed(self.split, index, stream="openvocab"),
                self.split,
                size=(image_size, image_size),
            )
            instance = self.segmenter.segment(
                case.scene.image, ObjectPrompt(text=case.text)
            ).instances[0]
            accumulator.add(instance.mask, case.scene.instance_mask(case.target_id))
        return {"miou": accumulator.miou, "cases": accumulator.count}

    def composition(self) -> dict[str, float]:
        both, text_only, click_only = IouAccumulator(), IouAccumulator(), IouAccumulator()
        image_size = self.frame_size
        for index in self._bar(range(self.size.cases), "composition"):
            case = render_composition_case(
                scene_seed(self.split, index, stream="composition"),
                self.split,
                size=(image_size, image_size),
            )
            gt = case.scene.instance_mask(case.target_id)
            click = Points.single(case.click_xy[0] + 0.5, case.click_xy[1] + 0.5)
            encoded = self.segmenter.encode_image(case.scene.image)
            result = self.segmenter.decode(
                encoded,
                PromptSet(
                    objects=[
                        ObjectPrompt(text=case.text, points=click),
                        ObjectPrompt(text=case.text),
                        ObjectPrompt(points=click),
                    ]
                ),
            )
            for accumulator, instance in zip((both, text_only, click_only), result.instances):
                accumulator.add(instance.mask, gt)
        return {
            "miou": both.miou,
            "miou_text_only": text_only.miou,
            "miou_click_only": click_only.miou,
        }

    def robustness(self) -> dict[str, Any]:
        """Per-variant metrics (see :mod:`seem_ros.eval.robustness`)."""
        from .robustness import robustness

        return robustness(self, scenes=self.robustness_scenes, clips=self.robustness_clips)

    # -------------------------------------------------------------------- all
    def run(self, sections: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
        report: dict[str, Any] = {"split": self.split, "sizes": self.size.__dict__.copy()}
        timings = {}
        for name in sections:
            started = time.time()
            report[name] = getattr(self, name)()
            timings[name] = round(time.time() - started, 2)
        report["seconds"] = timings
        return report


@dataclass
class ReferringScores:
    """Referring IoUs, all phrases and split by what they name (things, stuff)."""

    every: IouAccumulator = field(default_factory=IouAccumulator)
    things: IouAccumulator = field(default_factory=IouAccumulator)
    stuff: IouAccumulator = field(default_factory=IouAccumulator)

    def add(self, pred: np.ndarray, target: Any) -> None:
        self.every.add(pred, target.mask)
        (self.stuff if target.category in STUFF_CATEGORIES else self.things).add(pred, target.mask)

    def summary(self) -> dict[str, float]:
        return {
            "miou": _miou_or_none(self.every),
            "ciou": self.every.ciou,
            "phrases": self.every.count,
            "miou_things": _miou_or_none(self.things),
            "miou_stuff": _miou_or_none(self.stuff),
        }


@dataclass
class GenericScores:
    panoptic: PanopticAccumulator
    semantic: SemanticAccumulator

    def summary(self) -> dict[str, float]:
        summary = self.panoptic.compute()
        return {
            "pq": summary.all.pq,
            "pq_things": summary.things.pq,
            "pq_stuff": summary.stuff.pq,
            "sq": summary.all.sq,
            "rq": summary.all.rq,
            "miou": self.semantic.miou,
        }


def _miou_or_none(accumulator: IouAccumulator) -> float | None:
    return accumulator.miou if accumulator.count else None


def _jf_report(with_memory: JfAccumulator, without_memory: JfAccumulator) -> dict[str, float]:
    return {
        "jf": with_memory.jf,
        "j": with_memory.j,
        "f": with_memory.f,
        "jf_no_memory": without_memory.jf,
    }


def _most_interior_click(mask: np.ndarray) -> Points:
    import cv2

    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return Points.single(x + 0.5, y + 0.5)


def flatten(report: dict[str, Any]) -> dict[str, float]:
    """``{"interactive": {"noc85": 1.2}}`` -> ``{"interactive.noc85": 1.2}`` (numbers only;
    nested blocks such as ``robustness`` give ``robustness.camera.pq``)."""
    flat: dict[str, float] = {}

    def walk(prefix: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict):
                walk(f"{prefix}.{key}", value)
            elif isinstance(value, int | float):
                flat[f"{prefix}.{key}"] = float(value)

    for section, values in report.items():
        if isinstance(values, dict) and section not in ("sizes", "seconds"):
            walk(section, values)
    return flat
