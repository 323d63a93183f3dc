"""The standing prompts of a running node and how each frame is segmented with them.

Two ways, chosen by the ``tracking`` parameter:

* :class:`TrackedSession` hands every prompt to the :class:`~seem_ros.tracking.Tracker`: a
  phrase, the clicked object, each detector box and each mask becomes one tracked object
  (decoded with its prompt once, then followed by memory, with a stable track ID); class
  names stand for every frame. A new click refines the clicked object with all clicks so far
  plus its last memory (SEEM's interactive refinement), keeping its track ID. A detector box
  that overlaps an object followed from an earlier box (its first box or its current mask)
  is not added again, so a detector publishing every frame does not multiply tracks.
* :class:`UntrackedSession` applies the same standing prompts to every frame from scratch.
  The newest detector message replaces the previous boxes. No track IDs.

Both run only on the worker thread; :class:`~seem_ros.ros.prompt_inbox.PromptInbox` carries
prompts over from the callbacks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

import numpy as np

from seem_ros.prompts import (
    Box,
    ClassNames,
    MaskPrompt,
    ObjectPrompt,
    Points,
    PromptError,
    PromptSet,
)
from seem_ros.results import SegmentationResult, mask_box, paint_instance_ids
from seem_ros.ros.prompt_inbox import Click, PromptUpdate
from seem_ros.segmenter import Segmenter
from seem_ros.tracking import Tracker, TrackerFullError

MAX_PROMPTED_OBJECTS = 32
BOX_MATCH_IOU = 0.5
Report = Callable[[str, str], None]


class PromptSession(Protocol):
    """What the node core needs from a session."""

    max_clicks: int

    def apply(self, update: PromptUpdate, image_hw: tuple[int, int], report: Report) -> None:
        """Take in what changed since the last frame; problems are reported, not raised."""

    def segment(self, rgb: np.ndarray, stamp_ns: int, report: Report) -> SegmentationResult:
        """Segment one frame with the standing prompts."""

    @property
    def object_count(self) -> int:
        """Prompted objects (and tracks) currently standing."""


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _clicks_prompt(clicks: list[Click]) -> Points:
    coords = np.array([[click.x, click.y] for click in clicks], dtype=np.float64)
    labels = np.array([int(click.positive) for click in clicks])
    return Points(coords, labels)


def _fits(prompt: Box | MaskPrompt, image_hw: tuple[int, int], what: str, report: Report) -> bool:
    try:
        prompt.validate(image_hw)
    except PromptError as error:
        report("prompt_does_not_fit", f"{what} dropped, the frame size changed: {error}")
        return False
    return True


def _inside(click: Click, image_hw: tuple[int, int]) -> bool:
    return 0.0 <= click.x <= image_hw[1] and 0.0 <= click.y <= image_hw[0]


def _standing_clicks(
    clicks: list[Click], new: list[Click], image_hw: tuple[int, int], limit: int, report: Report
) -> list[Click]:
    fitting = [click for click in new if _inside(click, image_hw)]
    if len(fitting) < len(new):
        report("prompt_does_not_fit", "click dropped, the frame size changed and it lies outside")
    merged = clicks + fitting
    if len(merged) > limit:
        report("clicks_dropped", f"more than {limit} standing clicks: oldest dropped")
    return merged[-limit:]


class TrackedSession:
    """Standing prompts as tracked objects of a :class:`Tracker`."""

    def __init__(self, tracker: Tracker, *, max_clicks: int) -> None:
        self.tracker = tracker
        self.max_clicks = max_clicks
        self._clicks: list[Click] = []
        self._click_track: int | None = None
        self._refer_track: int | None = None
        self._box_tracks: dict[int, Box] = {}

    @property
    def object_count(self) -> int:
        return len(self.tracker)

    def apply(self, update: PromptUpdate, image_hw: tuple[int, int], report: Report) -> None:
        if update.reset:
            self.tracker.reset()
            self._clicks, self._click_track, self._refer_track = [], None, None
            self._box_tracks.clear()
        if update.classes_changed:
            self.tracker.set_classes(update.classes)
        if update.refer is not None:
            self._remove(self._refer_track)
            self._refer_track = self._add(ObjectPrompt(text=update.refer), None, report)
        if update.clear_clicks:
            self._remove(self._click_track)
            self._clicks, self._click_track = [], None
        if update.clicks:
            self._reseed_clicked(update.clicks, image_hw, report)
        for labelled in update.boxes or ():
            if _fits(labelled.box, image_hw, "box", report) and not self._already_followed(
                labelled.box
            ):
                track_id = self._add(ObjectPrompt(box=labelled.box), labelled.label, report)
                if track_id is not None:
                    self._box_tracks[track_id] = labelled.box
        for mask in update.masks:
            if _fits(mask, image_hw, "mask prompt", report):
                self._add(ObjectPrompt(mask=mask), None, report)

    def _reseed_clicked(self, new: list[Click], image_hw: tuple[int, int], report: Report) -> None:
        clicks = _standing_clicks(self._clicks, new, image_hw, self.max_clicks, report)
        if clicks == self._clicks:
            return
        self._clicks = clicks
        prompt = ObjectPrompt(points=_clicks_prompt(clicks))
        if self._click_track is not None:
            try:  # the clicked object keeps its track ID; its memory joins the new clicks
                self.tracker.refine(self._click_track, prompt)
                return
            except KeyError:  # it expired meanwhile
                self._click_track = None
        self._click_track = self._add(prompt, None, report)

    def _already_followed(self, box: Box) -> bool:
        """Whether ``box`` overlaps an object followed from an earlier box: where the detector
        saw it first, or where its mask is now."""
        for track_id, seed_box in list(self._box_tracks.items()):
            track = self.tracker.tracks.get(track_id)
            if track is None and track_id not in self.tracker.pending_ids:
                del self._box_tracks[track_id]
                continue
            candidates = [seed_box.xyxy]
            if track is not None and track.state == "tracked" and track.last_mask.any():
                candidates.append(tuple(float(v) for v in mask_box(track.last_mask)))
            if any(_box_iou(c, box.xyxy) >= BOX_MATCH_IOU for c in candidates):  # type: ignore[arg-type]
                return True
        return False

    def _add(self, prompt: ObjectPrompt, label: str | None, report: Report) -> int | None:
        prompted = sum(1 for t in self.tracker.tracks.values() if not t.is_generic)
        if prompted + len(self.tracker.pending_ids) >= MAX_PROMPTED_OBJECTS:
            report(
                "too_many_objects",
                f"{MAX_PROMPTED_OBJECTS} prompted objects are followed already: "
                "call ~/reset or ~/clear_clicks",
            )
            return None
        try:
            return self.tracker.add_object(prompt, label)
        except TrackerFullError as error:
            report("too_many_objects", str(error))
            return None

    def _remove(self, track_id: int | None) -> None:
        if track_id is None:
            return
        with contextlib.suppress(KeyError):  # it expired already
            self.tracker.remove(track_id)

    def segment(self, rgb: np.ndarray, stamp_ns: int, report: Report) -> SegmentationResult:
        try:
            return self.tracker.step(rgb, stamp_ns)
        except PromptError as error:
            # A new object's prompt cannot be decoded (e.g. a mask too small for the model):
            # drop the objects not decoded yet and segment the frame without them.
            for track_id in self.tracker.pending_ids:
                self._remove(track_id)
            report("prompt_rejected", f"new prompts dropped, the model cannot use them: {error}")
            return self.tracker.step(rgb, stamp_ns)


class UntrackedSession:
    """Standing prompts applied to every frame from scratch (``tracking: false``)."""

    def __init__(self, segmenter: Segmenter, *, max_clicks: int) -> None:
        self.segmenter = segmenter
        self.max_clicks = max_clicks
        self._classes: ClassNames | None = None
        self._refer: ObjectPrompt | None = None
        self._clicks: list[Click] = []
        self._boxes: list[ObjectPrompt] = []
        self._masks: list[ObjectPrompt] = []
        self._new: list[ObjectPrompt] = []

    @property
    def object_count(self) -> int:
        return len(self._objects())

    def _objects(self) -> list[ObjectPrompt]:
        objects = [self._refer] if self._refer is not None else []
        if self._clicks:
            objects.append(ObjectPrompt(points=_clicks_prompt(self._clicks)))
        return objects + self._boxes + self._masks

    def apply(self, update: PromptUpdate, image_hw: tuple[int, int], report: Report) -> None:
        if update.reset:
            self._classes, self._refer = None, None
            self._clicks, self._boxes, self._masks = [], [], []
        if update.classes_changed:
            self._classes = update.classes
        self._new = []
        if update.refer is not None:
            self._refer = ObjectPrompt(text=update.refer)
            self._new.append(self._refer)
        if update.clear_clicks:
            self._clicks = []
        if update.clicks:
            self._clicks = _standing_clicks(
                self._clicks, update.clicks, image_hw, self.max_clicks, report
            )
        if update.boxes is not None:
            self._boxes = [
                ObjectPrompt(box=labelled.box, label=labelled.label)
                for labelled in update.boxes
                if _fits(labelled.box, image_hw, "box", report)
            ]
            self._new += self._boxes
        for mask in update.masks:
            if _fits(mask, image_hw, "mask prompt", report):
                self._masks.append(ObjectPrompt(mask=mask))
                self._new.append(self._masks[-1])
        self._limit_objects(report)

    def _limit_objects(self, report: Report) -> None:
        excess = len(self._objects()) - MAX_PROMPTED_OBJECTS
        if excess <= 0:
            return
        report(
            "too_many_objects",
            f"more than {MAX_PROMPTED_OBJECTS} prompted objects: oldest masks and boxes dropped",
        )
        drop_masks = min(excess, len(self._masks))
        self._masks = self._masks[drop_masks:]
        self._boxes = self._boxes[excess - drop_masks :]

    def segment(self, rgb: np.ndarray, stamp_ns: int, report: Report) -> SegmentationResult:
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        if self._classes is None and not self._objects():
            return SegmentationResult([], paint_instance_ids([], hw), "instance")
        encoded = self.segmenter.encode_image(rgb)
        try:
            return self.segmenter.decode(encoded, self._prompts())
        except PromptError as error:
            if not self._new:
                raise
            self._drop_new()
            report("prompt_rejected", f"new prompts dropped, the model cannot use them: {error}")
        if self._classes is None and not self._objects():
            return SegmentationResult([], paint_instance_ids([], hw), "instance")
        return self.segmenter.decode(encoded, self._prompts())

    def _prompts(self) -> PromptSet:
        return PromptSet(classes=self._classes, objects=self._objects())

    def _drop_new(self) -> None:
        rejected = {id(obj) for obj in self._new}
        if id(self._refer) in rejected:
            self._refer = None
        self._boxes = [obj for obj in self._boxes if id(obj) not in rejected]
        self._masks = [obj for obj in self._masks if id(obj) not in rejected]
        self._new = []
