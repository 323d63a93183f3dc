"""Multi-object tracking with SEEM memory prompts: explicit state, one encode + one decode a frame.

SEEM's memory tokens follow an object between interaction rounds on one image; the tracker
carries them from frame to frame instead (like SAM 2's ``inference_state``, the state is this
object, not a hidden global). Each :meth:`Tracker.step`:

1. builds ONE :class:`PromptSet`: objects added since the last step with their own prompt,
   tracked objects with their memory (last mask + tokens) and the reference crop from their
   first confident frame, lost objects with the reference crop from their last confident frame
   and their referring text (no stale location, and no tokens of a frame where the object was
   not found), plus the standing class names;
2. encodes the frame once and decodes that prompt set once (SEEM's attention rules keep the
   objects independent); a tracked object whose answer is not confident is looked for once
   more in the same encoding, as a lost object would be, before it is declared lost
   (re-identification; one more decode only in frames where that happens);
3. updates the tracks: prompted objects keep their id through their ``object_id``, and (with
   ``motion_gate``) keep only the part of their new mask that lies where their recent motion
   says they are (:class:`~seem_ros.tracking.motion.MotionMemory`: a look-alike elsewhere in
   the frame is not the object; a hidden object is looked for where it should reappear);
   generic instances are matched to generic tracks by mask IoU (Hungarian); unconfident or
   unmatched tracks become lost and expire after ``ttl_frames`` unseen frames.

Nothing grows with the number of frames: at most ``max_tracks`` tracks, each holding one mask,
a few memory tokens and a reference crop of bounded size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..prompts import (
    ClassNames,
    MemoryPrompt,
    ObjectPrompt,
    PromptError,
    PromptLike,
    PromptSet,
    as_prompt_set,
)
from ..results import Instance, paint_instance_ids
from ..segmenter import EncodedImage, Segmenter, as_rgb_image
from .matching import mask_iou_matrix, match_by_iou
from .motion import MotionMemory, part_at
from .reference import reference_crop
from .track import Stamp, Track, TrackingResult


class TrackerFullError(RuntimeError):
    """No room for another track: ``max_tracks`` are live and none of them is lost."""


@dataclass
class _Changes:
    """Track ids whose state changed during one step (becomes the result's event lists)."""

    new: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    reacquired: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


class Tracker:
    """Follows prompted objects and standing-class instances across frames with stable ids.

    Args:
        segmenter: the SEEM segmenter (its ``encode_image`` runs once per step).
        ttl_frames: a track unseen for this many frames expires.
        max_tracks: live tracks (including objects added but not yet decoded) never exceed
            this; the longest-unseen lost tracks are evicted first to make room.
        min_score: a mask (prompted or generic) scoring below this counts as not seen.
        min_area: a mask with fewer pixels counts as not seen.
        match_iou: least IoU for a generic instance to continue a generic track.
        reference_max_side: longest side of a track's stored reference crop, in pixels.
        motion_gate: keep, of a prompted object's new mask, only the connected part where its
            motion over its last confident frames puts it (and carry that part as its memory).

    Cost: the segmenter embeds a reference region by encoding its crop, so each lost track
    that has a reference adds one encode (of its crop) per step unless the segmenter caches
    reference tokens; a lost track keeps the same ``ReferenceRegion`` object for that reason.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        *,
        ttl_frames: int = 30,
        max_tracks: int = 64,
        min_score: float = 0.25,
        min_area: int = 16,
        match_iou: float = 0.3,
        reference_max_side: int = 128,
        motion_gate: bool = True,
    ) -> None:
        for name, value, least in (
            ("ttl_frames", ttl_frames, 1),
            ("max_tracks", max_tracks, 1),
            ("min_area", min_area, 0),
            ("reference_max_side", reference_max_side, 8),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not 0.0 < match_iou <= 1.0:
            raise ValueError(f"match_iou must be in (0, 1], got {match_iou}")
        self.segmenter = segmenter
        self.ttl_frames = ttl_frames
        self.max_tracks = max_tracks
        self.min_score = float(min_score)
        self.min_area = min_area
        self.match_iou = float(match_iou)
        self.reference_max_side = reference_max_side
        self.motion_gate = bool(motion_gate)
        self.frame_index = 0
        self._next_id = 1
        self._tracks: dict[int, Track] = {}
        self._pending: dict[int, ObjectPrompt] = {}  # added objects awaiting their first decode
        self._refinements: dict[int, ObjectPrompt] = {}  # new prompts for live tracks (next step)
        self._classes: ClassNames | None = None
        self._evicted: list[int] = []  # evicted by add_object, reported by the next step

    # ------------------------------------------------------------------ state
    @property
    def tracks(self) -> Mapping[int, Track]:
        """Live tracks by id (read-only view)."""
        return MappingProxyType(self._tracks)

    @property
    def pending_ids(self) -> tuple[int, ...]:
        """Ids of added objects that the next step decodes for the first time."""
        return tuple(self._pending)

    @property
    def classes(self) -> ClassNames | None:
        return self._classes

    def __len__(self) -> int:
        return len(self._tracks) + len(self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes held in the tracks' arrays (masks, memory tokens, reference crops)."""
        return sum(track.nbytes for track in self._tracks.values())

    # ------------------------------------------------------------------ prompts
    def add_object(self, prompt: ObjectPrompt | PromptLike, label: str | None = None) -> int:
        """Follow one object given once by click, box, scribble, mask, text or reference region.

        It is decoded with this prompt on the next :meth:`step`, then carried by memory alone.
        Returns its track id. Raises :class:`TrackerFullError` when there is no room.
        """
        if isinstance(prompt, ClassNames):
            raise PromptError(
                "add_object takes one object's prompt; use set_classes for class names"
            )
        if not isinstance(prompt, ObjectPrompt):
            prompt = as_prompt_set(prompt).objects[0]
        if not self._make_room(self._evicted):
            raise TrackerFullError(
                f"all {self.max_tracks} tracks are live and none is lost; "
                "remove one or raise max_tracks"
            )
        track_id = self._new_id()
        self._pending[track_id] = dataclasses.replace(
            prompt, label=label or prompt.display_label, object_id=track_id
        )
        return track_id

    def refine(self, track_id: int, prompt: ObjectPrompt | PromptLike) -> None:
        """Give a followed object new prompts (e.g. all clicks so far): the next :meth:`step`
        decodes it with them plus its memory (SEEM's interactive refinement), keeping its id."""
        if not isinstance(prompt, ObjectPrompt):
            prompt = as_prompt_set(prompt).objects[0]
        if track_id in self._pending:
            old = self._pending[track_id]
            self._pending[track_id] = dataclasses.replace(
                prompt, label=old.label, object_id=track_id
            )
            return
        track = self._tracks.get(track_id)
        if track is None or track.is_generic:
            raise KeyError(f"no prompted track with id {track_id}")
        self._refinements[track_id] = dataclasses.replace(
            prompt, label=track.label, object_id=track_id
        )

    def set_classes(self, classes: ClassNames | None) -> None:
        """Standing class names segmented in every frame; None stops that and drops the
        generic tracks."""
        if classes is not None and not isinstance(classes, ClassNames):
            raise PromptError(f"set_classes takes ClassNames or None, got {type(classes).__name__}")
        self._classes = classes
        if classes is None:
            for track_id in [i for i, t in self._tracks.items() if t.is_generic]:
                del self._tracks[track_id]

    def remove(self, track_id: int) -> None:
        """Stop following one object (its id is never given out again)."""
        if self._tracks.pop(track_id, None) is None and self._pending.pop(track_id, None) is None:
            raise KeyError(f"no track with id {track_id}; live ids are {sorted(self._tracks)}")

    def clear_prompts(self) -> None:
        """Forget the standing classes (and their tracks) and objects not yet decoded; objects
        already carried by memory keep being tracked."""
        self._pending.clear()
        self._refinements.clear()
        self.set_classes(None)

    def reset(self) -> None:
        """Drop every track, prompt and class; ids keep counting up, so none is ever reused."""
        self._tracks.clear()
        self._pending.clear()
        self._refinements.clear()
        self._evicted.clear()
        self._classes = None
        self.frame_index = 0

    def build_prompts(self) -> PromptSet:
        """The prompt set the next step decodes: new objects, then tracks, then the classes."""
        objects = list(self._pending.values())
        for track in self._tracks.values():
            if not track.is_generic:
                objects.append(self._carry_prompt(track))
        return PromptSet(classes=self._classes, objects=objects)

    def _carry_prompt(self, track: Track) -> ObjectPrompt:
        """Tracked: memory (mask + tokens) and the first reference crop. Lost: see
        :meth:`_search_prompt`."""
        refinement = self._refinements.get(track.track_id)
        if refinement is not None:
            memory = track.memory if track.state == "tracked" else refinement.memory
            return dataclasses.replace(refinement, memory=memory)
        if track.state == "tracked":
            return ObjectPrompt(
                memory=track.memory,
                reference=track.first_reference,
                label=track.label,
                object_id=track.track_id,
            )
        return self._search_prompt(track)

    def _search_prompt(self, track: Track) -> ObjectPrompt:
        """An object not seen in the last frame: the reference crop from its last confident
        frame and the original referring text, which hold in any frame. Its memory tokens (with
        an empty mask) only when there is neither: tokens decoded where the object was not
        found point the decoder away from it."""
        source = track.source_prompt
        assert isinstance(source, ObjectPrompt)
        has_cue = track.reference is not None or source.text is not None
        return ObjectPrompt(
            text=source.text,
            reference=track.reference,
            memory=None if has_cue else _forget_location(track.memory),
            label=track.label,
            object_id=track.track_id,
        )

    # ------------------------------------------------------------------ step
    def step(self, image: np.ndarray, stamp: Stamp = None) -> TrackingResult:
        """Segment one frame: one encode, one decode for everything, then update the tracks."""
        rgb = as_rgb_image(image)
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        self._check_pending(hw)
        changes = _Changes(expired=self._evicted)
        self._evicted = []
        self.frame_index += 1
        for track in self._tracks.values():
            track.age += 1
            track.frames_since_seen += 1
        prompts = self.build_prompts()
        seen: list[Instance] = []
        classes: tuple[str, ...] = ()
        if not prompts.is_empty:
            encoded = self.segmenter.encode_image(rgb)
            decoded = self.segmenter.decode(encoded, prompts, task="instance")
            classes = decoded.classes
            # prompted first: new generic tracks may evict lost tracks, never ones decoded below
            prompted = [i for i in decoded.instances if i.source == "prompt"]
            seen_prompted = self._update_prompted(prompted, rgb, stamp, changes)
            seen_prompted += self._reidentify(encoded, rgb, changes)
            generic = [i for i in decoded.instances if i.source == "generic" and self._confident(i)]
            seen = self._update_generic(generic, stamp, changes) + seen_prompted
        for track_id, refinement in self._refinements.items():
            if track_id in self._tracks:
                self._tracks[track_id].source_prompt = refinement
        self._refinements.clear()
        self._expire(changes)
        return TrackingResult(
            instances=seen,
            instance_ids=paint_instance_ids(seen, hw),
            task="instance",
            classes=classes,
            stamp=stamp,
            new=tuple(changes.new),
            lost=tuple(changes.lost),
            reacquired=tuple(changes.reacquired),
            expired=tuple(changes.expired),
        )

    def _check_pending(self, hw: tuple[int, int]) -> None:
        """Drop an added object (or a refinement) whose prompt does not fit this frame, before
        any state changes."""
        for track_id, prompt in list(self._refinements.items()):
            try:
                prompt.validate(hw)
            except PromptError as error:
                del self._refinements[track_id]
                raise PromptError(
                    f"refinement of object {track_id} was dropped: {error}"
                ) from error
        for track_id, prompt in list(self._pending.items()):
            try:
                prompt.validate(hw)
            except PromptError as error:
                del self._pending[track_id]
                raise PromptError(f"object {track_id} was removed: {error}") from error

    def _confident(self, instance: Instance) -> bool:
        return instance.score >= self.min_score and instance.area >= self.min_area

    def _update_prompted(
        self, instances: list[Instance], image: np.ndarray, stamp: Stamp, changes: _Changes
    ) -> list[Instance]:
        seen = []
        for instance in instances:
            track_id = instance.object_id
            assert track_id is not None
            if track_id in self._pending:
                track = self._start_prompted(self._pending.pop(track_id), instance, stamp)
                changes.new.append(track_id)
            else:
                track = self._tracks[track_id]
            if track.motion is not None:
                instance = _gated(instance, track, self.frame_index)
            if self._confident(instance):
                self._see(track, instance, image, changes)
                seen.append(instance)
            elif track.state == "tracked":
                track.state = "lost"
                track.memory = _forget_location(track.memory)
                changes.lost.append(track_id)
        return seen

    def _see(self, track: Track, instance: Instance, image: np.ndarray, changes: _Changes) -> None:
        """A confident answer for a prompted track: seen, with this frame's memory, motion and
        reference crop."""
        self._mark_seen(track, instance, changes)
        track.memory = instance.memory
        if track.motion is not None:
            track.motion.record(self.frame_index, instance.mask)
        crop = reference_crop(image, instance.mask, max_side=self.reference_max_side)
        track.reference = crop or track.reference
        if track.first_reference is None:
            track.first_reference = track.reference

    def _reidentify(
        self, encoded: EncodedImage, image: np.ndarray, changes: _Changes
    ) -> list[Instance]:
        """Tracks lost in this step (not new ones) are looked for once more, in the same
        encoding, as lost objects; found again, they stay tracked."""
        candidates = [
            self._tracks[i]
            for i in changes.lost
            if i in self._tracks
            and not self._tracks[i].is_generic
            and i not in changes.new
            and i not in self._refinements
        ]
        if not candidates:
            return []
        prompts = PromptSet(objects=[self._search_prompt(t) for t in candidates])
        decoded = self.segmenter.decode(encoded, prompts, task="instance")
        seen = []
        for track, instance in zip(candidates, decoded.instances):
            if track.motion is not None:
                instance = _gated(instance, track, self.frame_index)
            if not self._confident(instance):
                continue
            changes.lost.remove(track.track_id)
            track.state = "tracked"  # never reported lost, so not reacquired either
            self._see(track, instance, image, changes)
            seen.append(instance)
        return seen

    def _start_prompted(self, prompt: ObjectPrompt, instance: Instance, stamp: Stamp) -> Track:
        """A track for an object decoded for the first time; the caller then marks it seen or
        lost (it counts as unseen in this frame until marked seen)."""
        assert prompt.object_id is not None and prompt.label is not None
        track = Track(
            track_id=prompt.object_id,
            label=prompt.label,
            score=0.0,
            last_mask=np.zeros_like(instance.mask),
            memory=instance.memory,
            reference=prompt.reference,
            source_prompt=prompt,
            created_stamp=stamp,
            frames_since_seen=1,
            motion=MotionMemory() if self.motion_gate else None,
        )
        self._tracks[track.track_id] = track
        return track

    def _update_generic(
        self, instances: list[Instance], stamp: Stamp, changes: _Changes
    ) -> list[Instance]:
        """Continue generic tracks with the instances that overlap them; the rest start tracks."""
        tracks = [t for t in self._tracks.values() if t.is_generic]
        iou = mask_iou_matrix([t.last_mask for t in tracks], [i.mask for i in instances])
        matches = match_by_iou(iou, self.match_iou)
        matched = {detection for _, detection in matches}
        seen = []
        for track_index, detection in matches:
            track, instance = tracks[track_index], instances[detection]
            track.label = instance.label
            self._mark_seen(track, instance, changes)
            seen.append(instance)
        for track in tracks:
            if track.state == "tracked" and track.frames_since_seen > 0:
                track.state = "lost"
                changes.lost.append(track.track_id)
        for detection, instance in enumerate(instances):
            if detection in matched or not self._make_room(changes.expired):
                continue
            track = Track(
                track_id=self._new_id(),
                label=instance.label,
                score=instance.score,
                last_mask=instance.mask,
                memory=None,
                reference=None,
                source_prompt=instance.label,
                created_stamp=stamp,
            )
            self._tracks[track.track_id] = track
            instance.track_id = track.track_id
            changes.new.append(track.track_id)
            seen.append(instance)
        return seen

    def _mark_seen(self, track: Track, instance: Instance, changes: _Changes) -> None:
        if track.state == "lost" and track.track_id not in changes.new:
            changes.reacquired.append(track.track_id)
        track.state = "tracked"
        track.frames_since_seen = 0
        track.score = instance.score
        track.last_mask = instance.mask
        instance.track_id = track.track_id

    def _expire(self, changes: _Changes) -> None:
        for track_id, track in list(self._tracks.items()):
            if track.state == "lost" and track.frames_since_seen >= self.ttl_frames:
                del self._tracks[track_id]
                changes.expired.append(track_id)

    def _make_room(self, evicted: list[int]) -> bool:
        """Evict the longest-unseen lost track if the tracker is full; False if it cannot."""
        if len(self) < self.max_tracks:
            return True
        lost = [t for t in self._tracks.values() if t.state == "lost"]
        if not lost:
            return False
        oldest = max(lost, key=lambda t: (t.frames_since_seen, -t.track_id))
        del self._tracks[oldest.track_id]
        evicted.append(oldest.track_id)
        return True

    def _new_id(self) -> int:
        track_id = self._next_id
        self._next_id += 1
        return track_id


def _gated(instance: Instance, track: Track, frame: int) -> Instance:
    """The instance with only the part of its mask where the object's motion puts it (before
    any sighting: the part under its positive clicks); its memory then holds that part too (a
    look-alike is not remembered as the object)."""
    assert track.motion is not None
    source = track.source_prompt
    if track.motion.sightings:
        mask = track.motion.select(instance.mask, frame)
    elif isinstance(source, ObjectPrompt) and source.points is not None:
        positive = source.points.coords[np.asarray(source.points.labels) > 0]
        mask = part_at(instance.mask, positive)
    else:
        mask = instance.mask
    if mask is instance.mask or np.array_equal(mask, instance.mask):
        return instance
    memory = instance.memory
    if memory is not None:
        memory = MemoryPrompt(mask=mask, tokens=memory.tokens)
    return dataclasses.replace(instance, mask=mask, memory=memory)


def _forget_location(memory: MemoryPrompt | None) -> MemoryPrompt | None:
    """Keep the memory tokens, drop the mask: a lost object may come back anywhere."""
    if memory is None:
        return None
    return MemoryPrompt(mask=np.zeros_like(memory.mask), tokens=memory.tokens)
