"""The training loop: AdamW + warm-up/cosine, checkpoint/resume, a loss log, tqdm progress."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import STUFF_CATEGORIES, class_names
from ..model.backbone import load_timm_weights
from ..model.build import build_model, load_into, save_model
from ..model.card import ModelCard
from ..model.seem import SEEM
from ..model.text_encoder import load_open_clip_text_tower
from .centre_offset import CentreOffsetHead
from .config import TrainConfig
from .episodes import EpisodeSampler
from .losses import LossWeights
from .step import StepRunner

LOG = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.safetensors"


def takes_weight_decay(name: str, param: torch.nn.Parameter) -> bool:
    """Weight matrices decay; norms, biases, scalars (the similarity temperature, the "no
    object" logit), embeddings and learned tokens do not: decaying a temperature towards zero
    would flatten every class distribution the model gives."""
    return not (param.ndim <= 1 or "embed" in name or "query_" in name or "memory_" in name)


def parameter_groups(model: SEEM, config: TrainConfig) -> list[dict]:
    """Text tower at its own rate, parts named in ``config.part_lr`` at theirs; no weight
    decay on norms, biases, embeddings and tokens. A ``part_lr`` prefix that names no
    parameter of the model is a :class:`ValueError` (a typo would silently train nothing
    faster)."""
    part_lr = config.part_lr or {}
    names = [name for name, _ in model.named_parameters()]
    unmatched = [prefix for prefix in part_lr if not any(n.startswith(prefix) for n in names)]
    if unmatched:
        raise ValueError(f"part_lr {unmatched} matches no parameter of the model")
    groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = config.text_lr if name.startswith("text_encoder.") else config.lr
        matching = [prefix for prefix in part_lr if name.startswith(prefix)]
        if matching:
            lr = part_lr[max(matching, key=len)]
        groups.setdefault((lr, not takes_weight_decay(name, param)), []).append(param)
    return [
        {
            "params": params,
            "lr": lr,
            "base_lr": lr,
            "weight_decay": 0.0 if no_decay else config.weight_decay,
        }
        for (lr, no_decay), params in groups.items()
    ]


def load_pretrained_parts(
    model: SEEM, *, backbone: str | Path | None = None, text: str | Path | None = None
) -> None:
    """Start a fresh model's backbone and/or text tower from pretrained files (a timm
    classification checkpoint; an open_clip CLIP checkpoint). Only training needs the files:
    the model saved afterwards holds these weights and loads without them."""
    if backbone:
        body = getattr(model.backbone, "body", None)
        if body is None:
            raise ValueError(
                f"pretrained_backbone: backbone {model.config.backbone.name!r} is built in and "
                "has no pretrained weights; name a timm backbone in the model config"
            )
        load_timm_weights(body, Path(backbone))
    if text:
        load_open_clip_text_tower(model.text_encoder.tower, Path(text))


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.config = config
        self.out_dir = Path(config.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if config.init_from:
            self.model = load_into(config.model, Path(config.init_from), seed=config.seed)
        else:
            self.model = build_model(config.model, seed=config.seed)
            load_pretrained_parts(
                self.model, backbone=config.pretrained_backbone, text=config.pretrained_text
            )
        self._freeze_all_but(config.train_only)
        self.vocabulary = list(class_names())
        # the centre-offset task's head trains with the model but is never part of it
        self.centre_offset = (
            CentreOffsetHead(self.model.config.decoder.hidden_dim)
            if config.centre_offset_weight > 0
            else None
        )
        groups = parameter_groups(self.model, config)
        if self.centre_offset is not None:
            groups.append(
                {
                    "params": list(self.centre_offset.parameters()),
                    "lr": config.centre_offset_lr,
                    "base_lr": config.centre_offset_lr,
                    "weight_decay": 0.0,
                }
            )
        self.optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999))
        self.sampler = EpisodeSampler(
            vocabulary=self.vocabulary,
            image_size=self.model.config.image_size,
            seed=config.seed,
            mix=config.mix,
            augment=config.augment,
        )
        self.runner = StepRunner(
            self.model,
            self.vocabulary,
            LossWeights(centre_offset=config.centre_offset_weight),
            centre_offset=self.centre_offset,
        )
        self.step = 0
        self._resume()

    def _freeze_all_but(self, prefixes: list[str] | None) -> None:
        """Train everything, or only the parameters under ``prefixes``; a frozen network runs
        in eval mode so that its batch-norm statistics stay the ones it was trained with."""
        if prefixes is None:
            self.model.train()
            return
        for name, param in self.model.named_parameters():
            param.requires_grad_(name.startswith(tuple(prefixes)))
        if not any(param.requires_grad for param in self.model.parameters()):
            raise ValueError(f"train_only {prefixes} matches no parameter of the model")
        self.model.eval()

    # ------------------------------------------------------------------ checkpoints
    def _resume(self) -> None:
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        if self.centre_offset is not None:
            self.centre_offset.load_state_dict(state["centre_offset"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.random.set_rng_state(state["torch_rng"])
        LOG.info("resumed from %s at step %d", path, self.step)

    def save_checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "sampler_rng": self.sampler.rng.bit_generator.state,
            "torch_rng": torch.random.get_rng_state(),
        }
        if self.centre_offset is not None:
            state["centre_offset"] = self.centre_offset.state_dict()
        tmp = self.out_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.out_dir / CHECKPOINT)
        self.export(self.out_dir / WEIGHTS)

    def export(self, path: Path, metrics: dict | None = None) -> Path:
        card = ModelCard(
            config=self.model.config,
            vocabulary=self.vocabulary,
            stuff_classes=list(STUFF_CATEGORIES),
            trained=self.step > 0,
            provenance={"data": "seem_ros.data procedural world, train split", "steps": self.step},
            training=self.config.to_dict(),
            metrics=metrics or {},
        )
        was_training = self.model.training
        self.model.eval()
        saved = save_model(self.model, path, card)
        self.model.train(was_training)
        return saved

    def _trained_parameters(self) -> list[torch.nn.Parameter]:
        extra = [] if self.centre_offset is None else list(self.centre_offset.parameters())
        return [*self.model.parameters(), *extra]

    # ------------------------------------------------------------------ loop
    def train(self, steps: int | None = None) -> list[dict[str, float]]:
        """Run until ``config.steps`` (or ``steps`` more steps); returns the logged losses."""
        end = self.config.steps if steps is None else min(self.config.steps, self.step + steps)
        log_path = self.out_dir / "loss_log.jsonl"
        history: list[dict[str, float]] = []
        running: dict[str, float] = {}
        started = time.time()
        with tqdm(
            total=end, initial=self.step, desc="train", unit="step", dynamic_ncols=True
        ) as bar:
            while self.step < end:
                factor = learning_rate_factor(self.step, self.config)
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                losses = self.runner(self.sampler.sample())
                self.optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                torch.nn.utils.clip_grad_norm_(self._trained_parameters(), self.config.grad_clip)
                self.optimizer.step()
                self.step += 1
                for key, value in losses.items():
                    running[key] = running.get(key, 0.0) + float(value.detach())
                if self.step % self.config.log_every == 0 or self.step == end:
                    count = (
                        self.config.log_every
                        if self.step % self.config.log_every == 0
                        else self.step % self.config.log_every
                    )
                    entry = {
                        "step": self.step,
                        "lr": factor * self.config.lr,
                        "seconds": round(time.time() - started, 1),
                    }
                    entry |= {k: round(v / count, 4) for k, v in running.items()}
                    running = {}
                    history.append(entry)
                    with open(log_path, "a") as handle:
                        handle.write(json.dumps(entry) + "\n")
                    bar.set_postfix(loss=entry["total"])
                if self.step % self.config.checkpoint_every == 0 or self.step == end:
                    self.save_checkpoint()
                bar.update(1)
        return history
