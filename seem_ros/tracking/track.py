"""What the tracker knows about each object, and what one tracking step returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..prompts import MemoryPrompt, ObjectPrompt, ReferenceRegion
from ..results import SegmentationResult
from .motion import MotionMemory

TrackState = Literal["tracked", "lost"]
Stamp = float | int | None


@dataclass
class Track:
    """One object followed across frames.

    ``source_prompt`` is the :class:`ObjectPrompt` the user gave (prompted tracks) or the class
    name that found it (generic tracks). ``memory`` is what the next frame's decode receives;
    ``reference`` is a small crop from the last confident frame, used to find the object again
    while it is lost. ``age`` counts frames since creation, ``frames_since_seen`` frames since
    the last confident mask (0 while tracked). ``motion`` (prompted tracks, when the tracker gates
    by motion) remembers where the object was in its last confident frames;
    ``first_reference`` is the crop from its first confident frame, carried with its memory
    while it is tracked (one object for the whole track, so its encoding is cached).
    """

    track_id: int
    label: str
    score: float
    last_mask: np.ndarray
    memory: MemoryPrompt | None
    reference: ReferenceRegion | None
    source_prompt: ObjectPrompt | str
    created_stamp: Stamp
    age: int = 0
    frames_since_seen: int = 0
    state: TrackState = "tracked"
    motion: MotionMemory | None = None
    first_reference: ReferenceRegion | None = None

    @property
    def is_generic(self) -> bool:
        """Found by standing class names (matched by IoU) rather than prompted (memory-carried)."""
        return isinstance(self.source_prompt, str)

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays: the last mask, memory, reference crops and the motion memory's
        last clean mask (shared arrays once)."""
        arrays = [self.last_mask]
        if self.memory is not None:
            arrays.append(self.memory.mask)
            if self.memory.tokens is not None:
                arrays.append(self.memory.tokens)
        for reference in (self.reference, self.first_reference):
            if reference is not None:
                arrays += [reference.image, reference.mask]
        if self.motion is not None and self.motion.template is not None:
            arrays.append(self.motion.template)
        unique = {id(array): array for array in arrays}
        return sum(int(array.nbytes) for array in unique.values())


@dataclass
class TrackingResult(SegmentationResult):
    """A :class:`SegmentationResult` whose instances all carry a ``track_id`` (only tracks
    seen confidently this frame appear), plus what changed in this step.

    new: tracks created this step (a prompted object whose first decode is not confident is
    both new and lost). lost: tracks that went from tracked to lost. reacquired: lost tracks
    seen again, same id. expired: tracks dropped (TTL reached, or evicted to stay within
    ``max_tracks``).
    """

    stamp: Stamp = None
    new: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()
    reacquired: tuple[int, ...] = ()
    expired: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for name in ("new", "lost", "reacquired", "expired"):
            data[name] = list(getattr(self, name))
        if self.stamp is not None:
            data["stamp"] = self.stamp
        return data
