"""``seem-ros distill``'s settings (no torch here: the CLI builds its options from them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class DistillConfig:
    shards: str
    out: str
    student: str = "student_nano"
    teacher: str | None = None  # default: the path the manifest names
    steps: int = 4000
    batch: int = 8
    lr: float = 4e-4
    weight_decay: float = 0.05
    warmup_steps: int = 200
    grad_clip: float = 1.0
    max_answers: int = 8
    held_out: float = 0.1
    eval_every: int = 500
    eval_frames: int = 48
    checkpoint_every: int = 250
    log_every: int = 25
    seed: int = 0
    threads: int = 2
    init_from_teacher: bool = True
    init_from: str | None = None  # an earlier student's weights to start from
    backbone_weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
