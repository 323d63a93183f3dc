"""Training configuration (YAML): which model, how long, how the batch is mixed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.augment import AugmentConfig
from .episodes import EpisodeMix


@dataclass
class TrainConfig:
    model: str = "tiny"  # a built-in model config name or a YAML path
    init_from: str | None = None  # weights (.safetensors) to start from
    # or a fresh model with parts from pretrained files (training only; the saved model's
    # weights hold them afterwards): a timm classification checkpoint for a timm backbone,
    # an open_clip CLIP checkpoint for the text tower
    pretrained_backbone: str | None = None
    pretrained_text: str | None = None
    out_dir: str = "runs/tiny"
    steps: int = 20000
    lr: float = 4e-4
    text_lr: float = 2e-4
    weight_decay: float = 0.05
    warmup_steps: int = 300
    grad_clip: float = 1.0
    checkpoint_every: int = 250
    log_every: int = 10
    seed: int = 0
    threads: int = 2
    mix: EpisodeMix = field(default_factory=EpisodeMix)
    # the recipe's augmentation (seem_ros.data.augment); None: images as rendered
    augment: AugmentConfig | None = None
    # names (prefixes of parameter names, e.g. "decoder.grounding.") of the only parts to
    # train; the rest stays frozen, batch-norm statistics included. None: train everything
    train_only: list[str] | None = None
    # learning rates of parts by parameter-name prefix (e.g. "pixel_decoder.context."), for
    # parts that fine-tuning adds to the weights it starts from: they start from nothing and
    # must move farther than the rest. The longest matching prefix wins; the text tower's
    # rate is text_lr unless a prefix names it
    part_lr: dict[str, float] | None = None
    # weight of the training-only centre-offset task on the pixel features
    # (seem_ros.train.centre_offset); 0 leaves it out
    centre_offset_weight: float = 0.0
    # the head of that task starts from scratch, so it learns faster than a fine-tuned network
    centre_offset_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.centre_offset_weight < 0:
            raise ValueError("training config: centre_offset_weight must be 0 or more")
        if self.part_lr is not None and any(lr <= 0 for lr in self.part_lr.values()):
            raise ValueError("training config: every part_lr must be above 0")
        if self.train_only is not None and not self.train_only:
            raise ValueError("training config: train_only names no part; leave it out instead")
        if self.init_from and (self.pretrained_backbone or self.pretrained_text):
            raise ValueError(
                "training config: init_from already holds every part; pretrained_backbone and "
                "pretrained_text are for a fresh model"
            )

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        data: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        if "mix" in data:
            mix = dict(data["mix"])
            for key in ("kind_weights", "wrong_mask_modes"):
                if key in mix:
                    mix[key] = tuple((str(k), float(v)) for k, v in mix[key].items())
            data["mix"] = EpisodeMix(**mix)
        if data.get("augment") is not None:
            data["augment"] = AugmentConfig.from_dict(dict(data["augment"]))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mix"]["kind_weights"] = dict(self.mix.kind_weights)
        data["mix"]["wrong_mask_modes"] = dict(self.mix.wrong_mask_modes)
        return data
