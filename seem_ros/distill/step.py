"""One distillation step: a batch of labelled frames -> the student's losses.

The student sees each frame through its own transform (its input size and padding); its mask
logits are carried onto the frame grid of the labels with the linear maps of
:mod:`~seem_ros.distill.frame_grid`, so the losses compare like with like whatever the two
models' input rules. A second click round is given the student's *own* first answer as memory
(a no-grad pass first), as it will be at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..model.prompt_tensors import PromptTensors
from ..model.seem import SEEM
from ..prompt_encoding import PromptLayout, build_prompt_tensors
from ..prompts import MemoryPrompt, ObjectPrompt
from ..transforms import ResizeTransform, on_one_canvas
from .frame_grid import model_grid_to_frame_grid
from .losses import DistillWeights, answer_distill_loss, generic_distill_loss
from .prompts import answer_prompt
from .record import FrameLabel, frame_grid_hw

ImageAugment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass
class _FrameView:
    """One frame as the student sees it in this step."""

    label: FrameLabel
    transform: ResizeTransform
    rows: torch.Tensor  # (gh, g) model grid -> frame grid
    cols: torch.Tensor  # (gw, g)
    answers: list[int]  # indices into label.answers trained this step

    def to_frame(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., g, g) model-grid logits -> (..., gh, gw) on the frame grid."""
        return self.rows @ logits @ self.cols.t()


class DistillStep:
    """Turns a batch of :class:`FrameLabel` into losses for ``model`` (in train mode).

    Args:
        transform_for: the student's (height, width) -> :class:`ResizeTransform` (the
            ``Segmenter``'s, so training and inference see frames alike).
        classes: the shards' vocabulary; ``mask_size``: their frame grid.
        max_answers: prompted answers trained per frame per step (sampled).
        objectness: a teacher query is a target when 1 - p(no object) reaches this.
        augment: optional photometric augmentation of the student's input image (the
            teacher's labels stay valid: pixels move nowhere).
    """

    def __init__(
        self,
        model: SEEM,
        *,
        transform_for: Callable[[int, int], ResizeTransform],
        classes: list[str],
        mask_size: int,
        max_answers: int = 8,
        objectness: float = 0.5,
        weights: DistillWeights | None = None,
        augment: ImageAugment | None = None,
    ) -> None:
        self.model = model
        self.transform_for = transform_for
        self.mask_size = mask_size
        self.max_answers = max_answers
        self.objectness = objectness
        self.weights = weights or DistillWeights()
        self.augment = augment
        self.layout = PromptLayout.of(model)
        with torch.no_grad():
            self.class_embeds = model.embed_class_names(list(classes)).float().detach()
        self._text: dict[str, np.ndarray] = {}
        self._matrices: dict[ResizeTransform, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ helpers
    def embed_text(self, text: str) -> np.ndarray:
        if text not in self._text:
            with torch.no_grad():
                self._text[text] = self.model.encode_text([text])[0].float().cpu().numpy()
        return self._text[text]

    def _view(
        self, label: FrameLabel, transform: ResizeTransform, rng: np.random.Generator
    ) -> _FrameView:
        height, width = label.image.shape[:2]
        if transform not in self._matrices:
            rows, cols = model_grid_to_frame_grid(
                transform,
                self.layout.mask_hw(transform.input_hw),
                frame_grid_hw(height, width, self.mask_size),
            )
            self._matrices[transform] = (torch.from_numpy(rows), torch.from_numpy(cols))
        rows, cols = self._matrices[transform]
        count = len(label.answers)
        chosen = (
            sorted(rng.choice(count, self.max_answers, replace=False).tolist())
            if count > self.max_answers
            else list(range(count))
        )
        return _FrameView(label, transform, rows, cols, chosen)

    def _tensors(self, views: list[_FrameView], prompts: list[list[ObjectPrompt]]) -> PromptTensors:
        width = max(1, max(len(p) for p in prompts))

        def build(view: _FrameView, objects: list[ObjectPrompt], slots: int | None):
            return build_prompt_tensors(
                objects,
                view.transform,
                self.layout,
                groups=width,
                slots=slots,
                embed_text=self.embed_text,
                embed_reference=lambda _region: np.zeros(self.layout.dim, np.float32),
            )

        parts = [build(v, p, 0) for v, p in zip(views, prompts)]
        slots = max(p.visual_valid.shape[2] for p in parts)
        parts = [
            part if part.visual_valid.shape[2] == slots else build(v, p, slots)
            for part, v, p in zip(parts, views, prompts)
        ]
        stacked = PromptTensors(
            **{k: np.concatenate([getattr(p, k) for p in parts]) for k in PromptTensors.names()}
        )
        return stacked.to_torch(next(self.model.parameters()).device)

    def _first_round_memory(
        self, views: list[_FrameView], features: tuple[torch.Tensor, ...]
    ) -> dict[tuple[int, int], MemoryPrompt]:
        """The student's own answers to the first click round that a trained second round
        refines: (frame, answer index) -> memory."""
        sources = [
            sorted({v.label.answers[a].memory_from for a in v.answers} - {-1}) for v in views
        ]
        if not any(sources):
            return {}
        prompts = [
            [answer_prompt(v.label.answers[s]) for s in src] for v, src in zip(views, sources)
        ]
        with torch.no_grad():
            detached = tuple(f.detach() for f in features)
            out = self.model.decode(detached, self._tensors(views, prompts))
        memories = {}
        for b, (view, src) in enumerate(zip(views, sources)):
            for slot, index in enumerate(src):
                mask = (view.to_frame(out["group_masks"][b, slot]) > 0).cpu().numpy()
                memories[(b, index)] = MemoryPrompt(
                    mask=mask, tokens=out["memory"][b, slot].cpu().numpy()
                )
        return memories

    # ------------------------------------------------------------------ the step
    def __call__(
        self, labels: list[FrameLabel], rng: np.random.Generator
    ) -> dict[str, torch.Tensor]:
        model = self.model
        device = next(model.parameters()).device
        # frames of several shapes stack in the widest's input, each at its own scale
        transforms = on_one_canvas([self.transform_for(*label.image.shape[:2]) for label in labels])
        views = [self._view(label, t, rng) for label, t in zip(labels, transforms)]
        inputs = []
        for view in views:
            image = view.label.image
            if self.augment is not None:
                image = self.augment(image, rng)
            inputs.append(view.transform.image_to_input(image))
        features = model.encode(torch.from_numpy(np.stack(inputs)).to(device))
        memories = self._first_round_memory(views, features)
        prompts = [
            [
                answer_prompt(
                    view.label.answers[a], memories.get((b, view.label.answers[a].memory_from))
                )
                for a in view.answers
            ]
            for b, view in enumerate(views)
        ]
        out = model.decode(features, self._tensors(views, prompts), with_aux=True)
        losses: dict[str, torch.Tensor] = {}
        levels = [*out["aux"], out]
        for level, prediction in enumerate(levels):
            weight = 1.0 if level == len(levels) - 1 else 0.5
            for key, value in self._level_losses(prediction, views).items():
                losses[key] = losses.get(key, 0.0) + weight * value
        losses["total"] = sum(losses.values())
        return losses

    def _level_losses(
        self, prediction: dict[str, torch.Tensor], views: list[_FrameView]
    ) -> dict[str, torch.Tensor]:
        totals: dict[str, torch.Tensor] = {}
        class_logits = self.model.classify(prediction["object_embeds"], self.class_embeds)
        answered = sum(len(v.answers) for v in views)
        for b, view in enumerate(views):
            label = view.label
            probs = torch.from_numpy(label.query_probs.astype(np.float32))
            confident = (1 - probs[:, -1]) >= self.objectness
            teacher_masks = torch.from_numpy(label.query_logits.astype(np.float32)).sigmoid()
            teacher_embeds = torch.from_numpy(label.query_embeds.astype(np.float32))
            terms = generic_distill_loss(
                view.to_frame(prediction["object_masks"][b]),
                class_logits[b],
                prediction["object_embeds"][b],
                probs[confident],
                teacher_masks[confident],
                teacher_embeds[confident],
                self.weights,
            )
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + value / len(views)
            if view.answers:
                count = len(view.answers)
                for key, value in self._answer_losses(prediction, b, view, teacher_embeds).items():
                    totals[key] = totals.get(key, 0.0) + value * (count / answered)
        return totals

    def _answer_losses(
        self,
        prediction: dict[str, torch.Tensor],
        b: int,
        view: _FrameView,
        teacher_embeds: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        label = view.label
        slots = torch.arange(len(view.answers))
        rows_of_query = {int(q): i for i, q in enumerate(label.query_index)}
        seed_rows = [rows_of_query.get(label.answers[a].seed_query) for a in view.answers]
        embed_valid = torch.tensor([row is not None for row in seed_rows])
        target_embeds = torch.zeros(len(view.answers), prediction["group_embeds"].shape[-1])
        for slot, row in enumerate(seed_rows):
            if row is not None:
                target_embeds[slot] = teacher_embeds[row]
        targets = torch.from_numpy(np.stack([label.answers[a].target for a in view.answers]))
        return answer_distill_loss(
            view.to_frame(prediction["group_masks"][b, slots]),
            prediction["group_scores"][b, slots],
            targets,
            prediction["group_embeds"][b, slots],
            target_embeds,
            embed_valid,
            self.weights,
        )
