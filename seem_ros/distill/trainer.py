"""``seem-ros distill``: train a student on the teacher's shards, resumably.

The run directory (``<out>.run/`` beside the output weights) holds ``checkpoint.pt`` (model,
optimizer, step) and ``model.safetensors`` (the weights at that checkpoint), ``loss_log.jsonl``,
``agreement.jsonl`` (held-out agreement as training goes) and ``config.json``; running the same
command again continues from the checkpoint. Frames are read a few shards at a time (their keys
shuffled together), so shards far larger than memory train fine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..model.build import file_sha256, load_model, save_model
from ..model.card import ModelCard
from ..model.seem import SEEM
from ..segmenter import Segmenter
from ..train.trainer import takes_weight_decay
from .agreement import agreement
from .config import DistillConfig
from .record import FrameLabel
from .shards import ShardSet
from .step import DistillStep, ImageAugment
from .student import build_student

LOG = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
SHARDS_PER_GROUP = 4


class DistillError(ValueError):
    """The shards, the teacher or a checkpoint do not fit together."""


def run_directory(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".run")


class FrameStream:
    """Batches of frames for epoch after epoch: shards are visited in a shuffled order,
    ``SHARDS_PER_GROUP`` at a time, their training keys shuffled together and read once."""

    def __init__(self, shards: ShardSet, train_keys: set[str], batch: int, seed: int) -> None:
        self.shards = shards
        self.batch = batch
        self.seed = seed
        self.groups = [
            [key for key in entry["keys"] if key in train_keys]
            for entry in shards.manifest["shards"]
        ]
        if not any(self.groups):
            raise DistillError("no training frames: every frame is held out")

    def epoch_plan(self, epoch: int) -> list[tuple[list[str], list[list[str]]]]:
        """(keys of a shard group, its batches) in this epoch's order; a group smaller than a
        batch is one smaller batch, a group's last partial batch is dropped."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.groups))
        plan = []
        for start in range(0, len(order), SHARDS_PER_GROUP):
            keys = [k for g in order[start : start + SHARDS_PER_GROUP] for k in self.groups[g]]
            if not keys:
                continue
            keys = [keys[i] for i in rng.permutation(len(keys))]
            chunks = [keys[i : i + self.batch] for i in range(0, len(keys), self.batch)]
            plan.append((keys, [c for i, c in enumerate(chunks) if i == 0 or len(c) == self.batch]))
        return plan

    def batches(self, start_step: int) -> Iterator[list[FrameLabel]]:
        """Batches from step ``start_step`` on, forever (a resumed run continues the plan)."""
        step, epoch = 0, 0
        while True:
            for keys, group_batches in self.epoch_plan(epoch):
                if step + len(group_batches) <= start_step:
                    step += len(group_batches)
                    continue
                frames = {frame.key: frame for frame in self.shards.frames(keys)}
                for batch in group_batches:
                    if step >= start_step:
                        yield [frames[k] for k in batch]
                    step += 1
            epoch += 1


def decay_groups(model: SEEM, weight_decay: float) -> list[dict]:
    """The student's trainable parameters as AdamW groups: weight decay only where training
    applies it (:func:`~seem_ros.train.trainer.takes_weight_decay`)."""
    groups: dict[bool, list[torch.nn.Parameter]] = {True: [], False: []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups[takes_weight_decay(name, param)].append(param)
    return [
        {"params": params, "weight_decay": weight_decay if decays else 0.0}
        for decays, params in groups.items()
        if params
    ]


class Distiller:
    def __init__(self, config: DistillConfig, *, augment: ImageAugment | None = None) -> None:
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.config = config
        self.shards = ShardSet.open(config.shards)
        teacher_info = self.shards.manifest["teacher"]
        teacher_path = Path(config.teacher or teacher_info["path"])
        if not teacher_path.is_file():
            raise DistillError(
                f"teacher weights not found at {teacher_path}: the student embeds text with the "
                "teacher's text tower; give its path with --teacher"
            )
        if file_sha256(teacher_path) != teacher_info["sha256"]:
            raise DistillError(
                f"{teacher_path} is not the teacher these shards were labelled with (sha256 "
                f"differs from the manifest's {teacher_info['sha256'][:12]}...)"
            )
        self.teacher, self.teacher_card = load_model(teacher_path)
        self.teacher_path = teacher_path
        self.model = build_student(
            config.student,
            self.teacher,
            seed=config.seed,
            init_from_teacher=config.init_from_teacher,
            init_from=self._earlier_student(config.init_from, teacher_info["sha256"]),
            backbone_weights=config.backbone_weights,
        )
        self.model.train()
        self.step = 0
        self.classes = list(self.shards.classes)
        self.run_dir = run_directory(config.out)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # the held-out frames stay the same whatever the training seed
        train_keys, self.held_out_keys = self.shards.split(config.held_out)
        self.stream = FrameStream(self.shards, set(train_keys), config.batch, config.seed)
        self.segmenter = Segmenter(self.model, self.card())
        self.step_runner = DistillStep(
            self.model,
            transform_for=self.segmenter.transform_for,
            classes=self.classes,
            mask_size=self.shards.mask_size,
            max_answers=config.max_answers,
            augment=augment,
        )
        self.optimizer = torch.optim.AdamW(
            decay_groups(self.model, config.weight_decay), lr=config.lr, betas=(0.9, 0.999)
        )
        self._resume()
        (self.run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    # ------------------------------------------------------------------ card and checkpoints
    @staticmethod
    def _earlier_student(path: str | None, teacher_sha256: str) -> SEEM | None:
        """``--init-from``: a student distilled from the same teacher (its embeddings live in
        that teacher's text space)."""
        if path is None:
            return None
        model, card = load_model(Path(path))
        source = card.provenance.get("distilled_from", {})
        if source.get("sha256") != teacher_sha256 or not isinstance(model, SEEM):
            raise DistillError(
                f"--init-from {path}: not a student of this teacher (its card names "
                f"{source.get('name', 'no teacher')}); start from a student these shards' "
                "teacher taught"
            )
        return model

    def card(self, metrics: dict | None = None) -> ModelCard:
        teacher = self.shards.manifest["teacher"]
        card = ModelCard(
            config=self.model.config,
            vocabulary=self.classes,
            stuff_classes=list(self.teacher_card.stuff_classes),
            trained=self.step > 0,
            provenance={
                "distilled_from": {
                    "name": Path(teacher["path"]).name,
                    "sha256": teacher["sha256"],
                    "config": self.teacher.config.name,
                },
                "shards": {
                    "directory": str(self.shards.directory),
                    "frames": len(self.shards),
                    "label_settings": _summary(self.shards.manifest.get("settings", {})),
                },
                "steps": self.step,
                "text_tower": "the teacher's, frozen (the student keeps its text space)",
            },
            training={"distill": self.config.to_dict()},
            metrics=metrics or {},
        )
        # the same text tower embeds class names the same way: the teacher's cache holds
        for names, embeds in self.teacher_card.class_embedding_cache().items():
            card.add_class_embeddings(list(names), embeds)
        return card

    def _resume(self) -> None:
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            return
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("shards_manifest_sha256") != self._manifest_sha256():
            raise DistillError(
                f"{path} was trained on shards of another teacher or other label settings; "
                f"remove {self.run_dir} to start afresh"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        torch.random.set_rng_state(state["torch_rng"])
        LOG.info("resumed from %s at step %d", path, self.step)

    def _manifest_sha256(self) -> str:
        """The labels' identity: teacher and label settings. Frames a resumed labelling run
        adds later do not change it (training continues on the grown set)."""
        settings = json.dumps(self.shards.manifest.get("settings", {}), sort_keys=True)
        teacher = self.shards.manifest["teacher"]["sha256"]
        return hashlib.sha256((teacher + settings).encode()).hexdigest()

    def save_checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "torch_rng": torch.random.get_rng_state(),
            "shards_manifest_sha256": self._manifest_sha256(),
        }
        tmp = self.run_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.run_dir / CHECKPOINT)
        # the weights so far, ready to evaluate while training goes on
        self.export(self.run_dir / "model.safetensors")

    def export(self, path: Path | None = None, metrics: dict | None = None) -> Path:
        """The student as weights + card (default: the ``--out`` path)."""
        was_training = self.model.training
        self.model.eval()
        saved = save_model(self.model, path or Path(self.config.out), self.card(metrics))
        self.model.train(was_training)
        return saved

    # ------------------------------------------------------------------ held-out agreement
    def held_out_agreement(self) -> dict[str, object]:
        keys = self.held_out_keys[: self.config.eval_frames]
        if not keys:
            return {"frames": 0}
        self.model.eval()
        try:
            with torch.no_grad():
                result = agreement(
                    Segmenter(self.model, self.card()),
                    self.shards.frames(keys),
                    classes=self.classes,
                    mask_size=self.shards.mask_size,
                )
        finally:
            self.model.train()
        return result

    # ------------------------------------------------------------------ loop
    def learning_rate_factor(self) -> float:
        config = self.config
        if self.step < config.warmup_steps:
            return (self.step + 1) / config.warmup_steps
        progress = (self.step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        # a Python float: the optimizer's state is saved and loaded with weights_only=True
        return float(0.5 * (1 + np.cos(np.pi * min(1.0, progress))))

    def train(self, steps: int | None = None) -> dict[str, object]:
        """Train to ``config.steps`` (or ``steps`` more); export; returns the last agreement."""
        config = self.config
        end = config.steps if steps is None else min(config.steps, self.step + steps)
        rng = np.random.default_rng([config.seed, self.step])
        running: dict[str, float] = {}
        started = time.time()
        last: dict[str, object] = {}
        batches = self.stream.batches(self.step)
        with tqdm(total=end, initial=self.step, desc="distill", unit="step") as bar:
            while self.step < end:
                factor = self.learning_rate_factor()
                for group in self.optimizer.param_groups:
                    group["lr"] = config.lr * factor
                losses = self.step_runner(next(batches), rng)
                self.optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad], config.grad_clip
                )
                self.optimizer.step()
                self.step += 1
                for key, value in losses.items():
                    running[key] = running.get(key, 0.0) + float(value.detach())
                if self.step % config.log_every == 0 or self.step == end:
                    count = self.step % config.log_every or config.log_every
                    entry = {"step": self.step, "lr": factor * config.lr}
                    entry |= {k: round(v / count, 4) for k, v in running.items()}
                    entry["seconds"] = round(time.time() - started, 1)
                    running = {}
                    self._append("loss_log.jsonl", entry)
                    bar.set_postfix(loss=entry["total"])
                if self.step % config.eval_every == 0 or self.step == end:
                    last = {"step": self.step, **self.held_out_agreement()}
                    self._append("agreement.jsonl", last)
                    LOG.info("held-out agreement at step %d: %s", self.step, last)
                if self.step % config.checkpoint_every == 0 or self.step == end:
                    self.save_checkpoint()
                bar.update(1)
        self.export(metrics={"held_out_agreement": last} if last else None)
        return last

    def _append(self, name: str, entry: dict[str, object]) -> None:
        with open(self.run_dir / name, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def _summary(settings: dict[str, Any]) -> dict[str, Any]:
    """Label settings for a card: the phrase list is counted, not copied."""
    summary = {k: v for k, v in settings.items() if k != "phrases"}
    summary["phrases"] = len(settings.get("phrases", []))
    return summary
