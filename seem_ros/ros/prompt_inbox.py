"""Prompts arriving between frames, collected without blocking and applied at the next frame.

Prompt callbacks run on middleware threads while the worker runs the model; the tracker is
not thread-safe and callbacks must never wait for the model. So callbacks only put validated
prompts into a :class:`PromptInbox`, and the worker drains it at the start of each frame.
The inbox coalesces: the newest class list, phrase and detector message win, clicks and masks
queue up to a bound, so a flood of prompts costs constant memory and one update per frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from seem_ros.prompts import Box, ClassNames, MaskPrompt, ReferringText

MAX_PENDING_MASKS = 8


@dataclass(frozen=True)
class Click:
    """A click in image pixels; ``positive`` False marks background."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class LabelledBox:
    """A detector's box and class: it becomes one tracked object labelled ``label``."""

    box: Box
    label: str


@dataclass
class PromptUpdate:
    """Everything said since the last frame, in the order it is applied.

    ``reset`` first (forget all), then the classes (``classes_changed``; None stops class
    segmentation), the phrase, ``clear_clicks``, new clicks, the detector boxes, the masks.
    """

    reset: bool = False
    classes_changed: bool = False
    classes: ClassNames | None = None
    refer: ReferringText | None = None
    clear_clicks: bool = False
    clicks: list[Click] = field(default_factory=list)
    boxes: list[LabelledBox] | None = None
    masks: list[MaskPrompt] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.reset
            or self.classes_changed
            or self.refer
            or self.clear_clicks
            or self.clicks
            or self.boxes is not None
            or self.masks
        )


class PromptInbox:
    """Thread-safe, bounded, coalescing collection of prompt changes.

    Args:
        max_clicks: Most clicks held; the oldest are dropped beyond it.
        on_drop: Called as ``on_drop(problem, message)`` when a queued prompt is dropped.
    """

    def __init__(
        self, *, max_clicks: int, on_drop: Callable[[str, str], None] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._update = PromptUpdate()
        self.max_clicks = max_clicks
        self._on_drop = on_drop or (lambda problem, message: None)

    def reset(self, classes: ClassNames | None = None) -> None:
        """Forget everything queued and everything standing; then stand ``classes``."""
        with self._lock:
            self._update = PromptUpdate(reset=True, classes_changed=True, classes=classes)

    def set_classes(self, classes: ClassNames | None) -> None:
        with self._lock:
            self._update.classes_changed = True
            self._update.classes = classes

    def set_refer(self, refer: ReferringText) -> None:
        with self._lock:
            self._update.refer = refer

    def clear_clicks(self) -> None:
        with self._lock:
            self._update.clear_clicks = True
            self._update.clicks = []

    def add_click(self, click: Click) -> None:
        with self._lock:
            self._update.clicks.append(click)
            excess = len(self._update.clicks) - self.max_clicks
            if excess > 0:
                del self._update.clicks[:excess]
        if excess > 0:
            self._on_drop("clicks_dropped", f"more than {self.max_clicks} clicks: oldest dropped")

    def set_boxes(self, boxes: list[LabelledBox]) -> None:
        """The newest detector message; one not yet applied is superseded."""
        with self._lock:
            self._update.boxes = list(boxes)

    def add_mask(self, mask: MaskPrompt) -> None:
        with self._lock:
            self._update.masks.append(mask)
            overflow = len(self._update.masks) > MAX_PENDING_MASKS
            if overflow:
                del self._update.masks[0]
        if overflow:
            self._on_drop(
                "masks_dropped",
                f"more than {MAX_PENDING_MASKS} mask prompts between two frames: oldest dropped",
            )

    def drain(self) -> PromptUpdate:
        """Take everything queued (the inbox is empty afterwards)."""
        with self._lock:
            update, self._update = self._update, PromptUpdate()
            return update
