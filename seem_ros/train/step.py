"""One training step: encode, simulate click rounds and memory hand-overs, decode, losses.

Text embeddings and reference-region tokens are computed in PyTorch inside the step (not by the
numpy prompt builder) so their gradients reach the text encoder and the sampler.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import torch

from ..data import STUFF_CATEGORIES
from ..eval.clicks import next_click
from ..model.prompt_tensors import PromptTensors
from ..model.seem import SEEM
from ..prompt_encoding import PromptLayout, build_prompt_tensors, reference_samples
from ..prompts import MemoryPrompt, ObjectPrompt, Points, ReferenceRegion
from ..transforms import ResizeTransform, model_input_transform, on_one_canvas
from .centre_offset import CentreOffsetHead, centre_offset_loss, centre_offset_targets
from .episodes import Episode, GroupSpec
from .losses import LossWeights, generic_loss, grounding_loss, group_loss


def is_phrase_only(spec: GroupSpec) -> bool:
    """Whether the group is prompted by a phrase alone: what the segmenter grounds in the
    generic queries, and so what trains the query-grounding head."""
    if not spec.text or spec.reference is not None or spec.memory_from is not None:
        return False
    prompt = spec.prompt
    return prompt is None or not (prompt.has_visual or prompt.memory or prompt.reference)


def object_prompt_of(spec: GroupSpec, reference_image: np.ndarray) -> ObjectPrompt:
    """The numpy-side prompt of a group; text and reference get placeholders filled in torch."""
    parts: dict[str, object] = {}
    if spec.prompt is not None:
        parts = {
            k: getattr(spec.prompt, k)
            for k in ("text", "points", "box", "scribbles", "mask", "memory")
        }
    if spec.text and parts.get("text") is None:
        parts["text"] = spec.text
    if spec.reference is not None:
        parts["reference"] = ReferenceRegion(reference_image, spec.reference[1])
    return ObjectPrompt(**parts)  # type: ignore[arg-type]


class StepRunner:
    """Turns an :class:`Episode` into losses for ``model`` (which must be in train mode).

    ``centre_offset``: the training-only head of the centre-offset task, trained (and its loss
    added) when ``weights.centre_offset`` is above 0.
    """

    def __init__(
        self,
        model: SEEM,
        vocabulary: list[str],
        weights: LossWeights | None = None,
        *,
        centre_offset: CentreOffsetHead | None = None,
    ) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.weights = weights or LossWeights()
        if self.weights.centre_offset > 0 and centre_offset is None:
            raise ValueError("a centre-offset loss weight needs a CentreOffsetHead")
        self.centre_offset = centre_offset
        self.is_thing = np.array([name not in STUFF_CATEGORIES for name in vocabulary])
        self.layout = PromptLayout.of(model)

    def transforms(self, episode: Episode) -> list[ResizeTransform]:
        """Each image at the scale the segmenter gives it (short side at the model's size,
        aspect kept), padded with the pixel mean to the batch's largest input so the images
        stack: a non-square frame is seen as at inference, not shrunk into the square."""
        return on_one_canvas(
            [model_input_transform(self.model.config, *i.shape[:2]) for i in episode.images]
        )

    def _tensors(
        self,
        episode: Episode,
        groups: list[int],
        specs: list[GroupSpec],
        transforms: list[ResizeTransform],
    ) -> tuple[PromptTensors, list[list[int]]]:
        """Prompt tensors (B, G) for the listed groups; returns which group sits in which slot."""
        per_image: list[list[int]] = [[] for _ in episode.images]
        for g in groups:
            per_image[specs[g].image].append(g)
        width = max(1, max(len(p) for p in per_image))
        parts = []
        for b, members in enumerate(per_image):
            prompts = [
                object_prompt_of(
                    specs[g],
                    episode.images[specs[g].reference[0]]
                    if specs[g].reference
                    else episode.images[b],
                )
                for g in members
            ]
            parts.append(
                build_prompt_tensors(
                    prompts,
                    transforms[b],
                    self.layout,
                    groups=width,
                    embed_text=lambda _t: np.zeros(self.layout.embed_dim, np.float32),
                    embed_reference=lambda _r: np.zeros(self.layout.dim, np.float32),
                )
            )
        stacked = PromptTensors(
            **{k: np.concatenate([getattr(p, k) for p in parts]) for k in PromptTensors.names()}
        )
        return stacked.to_torch(next(self.model.parameters()).device), per_image

    def _fill_text_and_references(
        self,
        tensors: PromptTensors,
        slots: list[list[int]],
        specs: list[GroupSpec],
        mask_features: torch.Tensor,
        transforms: list[ResizeTransform],
    ) -> PromptTensors:
        texts = sorted({specs[g].text for members in slots for g in members if specs[g].text})
        text_embeds = self.model.encode_text(texts) if texts else None
        text_embed = tensors.text_embed.clone()
        ref_token = tensors.ref_token.clone()
        for b, members in enumerate(slots):
            for slot, g in enumerate(members):
                spec = specs[g]
                if spec.text and text_embeds is not None:
                    text_embed[b, slot] = text_embeds[texts.index(spec.text)]
                if spec.reference is not None:
                    ref_image, region = spec.reference
                    coords, valid = reference_samples(
                        ReferenceRegion(np.zeros((*region.shape, 3), np.uint8), region),
                        transforms[ref_image],
                        self.layout,
                    )
                    device = mask_features.device
                    ref_token[b, slot] = self.model.reference_token(
                        mask_features[ref_image : ref_image + 1],
                        torch.from_numpy(coords[None]).to(device),
                        torch.from_numpy(valid[None]).to(device),
                    )[0]
        return replace(tensors, text_embed=text_embed, ref_token=ref_token)

    def _update_from_output(
        self,
        spec: GroupSpec,
        mask_logits: torch.Tensor,
        memory: torch.Tensor,
        transform: ResizeTransform,
        *,
        add_click: bool,
    ) -> None:
        """After a no-grad pass: next corrective click + memory of this round."""
        positive = (mask_logits > 0).float().cpu().numpy()
        grid_h, grid_w = positive.shape
        rows = round(transform.resized_hw[0] * grid_h / transform.input_hw[0])
        cols = round(transform.resized_hw[1] * grid_w / transform.input_hw[1])
        pred = (
            cv2.resize(
                np.ascontiguousarray(positive[:rows, :cols]),
                (transform.width, transform.height),
                interpolation=cv2.INTER_NEAREST,
            )
            > 0.5
        )
        spec.prompt = spec.prompt or ObjectPrompt(text=spec.text)
        parts = {k: getattr(spec.prompt, k) for k in ("text", "points", "box", "scribbles", "mask")}
        parts["memory"] = MemoryPrompt(mask=pred, tokens=memory.cpu().numpy())
        if add_click:
            click = next_click(pred, spec.gt_mask)
            if click is not None:
                old = parts["points"]
                coords = np.array([[click.x + 0.5, click.y + 0.5]])
                labels = np.array([int(click.positive)])
                if old is not None:
                    coords, labels = (
                        np.concatenate([old.coords, coords]),
                        np.concatenate([old.labels, labels]),
                    )
                parts["points"] = Points(coords, labels)
        spec.prompt = ObjectPrompt(**parts)

    def __call__(self, episode: Episode) -> dict[str, torch.Tensor]:
        model = self.model
        device = next(model.parameters()).device
        transforms = self.transforms(episode)
        images = torch.from_numpy(
            np.stack([t.image_to_input(i) for t, i in zip(transforms, episode.images)])
        ).to(device)
        features = model.encode(images)
        specs = [replace(s) for s in episode.groups]
        # 1) no-grad passes: click rounds, and the first frame of memory hand-overs
        sources = {s.memory_from for s in specs if s.memory_from is not None}
        for round_index in range(max([s.rounds for s in specs] + [0 if not sources else 1])):
            active = [
                g
                for g, s in enumerate(specs)
                if s.rounds > round_index or (round_index == 0 and g in sources)
            ]
            if not active:
                break
            with torch.no_grad():
                detached = tuple(f.detach() for f in features)
                tensors, slots = self._tensors(episode, active, specs, transforms)
                tensors = self._fill_text_and_references(
                    tensors, slots, specs, detached[0], transforms
                )
                out = model.decode(detached, tensors)
            for b, members in enumerate(slots):
                for slot, g in enumerate(members):
                    self._update_from_output(
                        specs[g],
                        out["group_masks"][b, slot],
                        out["memory"][b, slot],
                        transforms[b],
                        add_click=specs[g].rounds > round_index,
                    )
        for spec in specs:
            if spec.memory_from is not None:
                source = specs[spec.memory_from]
                memory = source.prompt.memory if source.prompt is not None else None
                if spec.memory_gt or memory is None:
                    memory = MemoryPrompt(
                        mask=episode.groups[spec.memory_from].gt_mask,
                        tokens=None if memory is None else memory.tokens,
                    )
                spec.prompt = ObjectPrompt(memory=memory)
        # 2) the trained forward pass
        everything = list(range(len(specs)))
        tensors, slots = self._tensors(episode, everything, specs, transforms)
        tensors = self._fill_text_and_references(tensors, slots, specs, features[0], transforms)
        out = model.decode(features, tensors, with_aux=True)
        class_embeds = model.encode_text(self.vocabulary)
        grid_hw = self.layout.mask_hw(transforms[0].input_hw)
        targets = [
            (
                torch.from_numpy(t.on_grid(transform, grid_hw)).to(device),
                torch.from_numpy(t.labels).to(device),
            )
            for t, transform in zip(episode.generic, transforms)
        ]
        flat = [(b, slot, g) for b, members in enumerate(slots) for slot, g in enumerate(members)]
        bi = torch.tensor([f[0] for f in flat], dtype=torch.long)
        si = torch.tensor([f[1] for f in flat], dtype=torch.long)
        group_targets = torch.from_numpy(
            np.stack([transforms[b].mask_to_grid(specs[g].gt_mask, grid_hw) for b, _, g in flat])
        ).to(device)
        group_labels = torch.tensor(
            [specs[f[2]].label for f in flat], dtype=torch.long, device=device
        )
        losses: dict[str, torch.Tensor] = {}
        for level, prediction in enumerate([*out["aux"], out]):
            weight = 1.0 if level == len(out["aux"]) else 0.5
            terms = generic_loss(
                prediction["object_masks"],
                model.classify(prediction["object_embeds"], class_embeds),
                targets,
                self.weights,
            )
            terms |= group_loss(
                prediction["group_masks"][bi, si],
                prediction["group_scores"][bi, si],
                model.classify(prediction["group_embeds"][bi, si], class_embeds),
                group_targets,
                group_labels,
                self.weights,
            )
            for key, value in terms.items():
                losses[key] = losses.get(key, 0.0) + weight * value
        if "group_grounding" in out:
            phrases = [index for index, f in enumerate(flat) if is_phrase_only(specs[f[2]])]
            chosen = torch.tensor(phrases, dtype=torch.long)
            losses |= grounding_loss(
                out["group_grounding"][bi[chosen], si[chosen]],
                out["object_masks"][bi[chosen]],
                group_targets[chosen.to(device)],
                self.weights,
            )
        if self.centre_offset is not None and self.weights.centre_offset > 0:
            losses["centre_offset"] = self.weights.centre_offset * self._centre_offset_loss(
                features[0], targets
            )
        losses["total"] = sum(losses.values())
        return losses

    def _centre_offset_loss(
        self,
        mask_features: torch.Tensor,
        targets: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        assert self.centre_offset is not None
        pairs = [
            centre_offset_targets(coverage.cpu().numpy(), self.is_thing[labels.cpu().numpy()])
            for coverage, labels in targets
        ]
        device = mask_features.device
        offsets = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
        weight = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
        return centre_offset_loss(self.centre_offset(mask_features), offsets, weight)
