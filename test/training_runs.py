"""Small training runs the training tests share: a one-scene mix and a short run's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seem_ros.train.config import TrainConfig
from seem_ros.train.episodes import EpisodeMix

SMALL_MIX = EpisodeMix(scenes=1, compositions=1, clip_pairs=1, groups_per_scene=2, max_rounds=1)
"""One scene, one composition case and one clip pair per step: every task, quickly."""


def short_run(folder: Path, **overrides: Any) -> TrainConfig:
    """A two-step run into ``folder / "run"`` that logs and checkpoints every step."""
    settings: dict[str, Any] = {
        "out_dir": str(folder / "run"),
        "steps": 2,
        "log_every": 1,
        "checkpoint_every": 1,
        "warmup_steps": 1,
        "mix": SMALL_MIX,
    }
    return TrainConfig(**(settings | overrides))
