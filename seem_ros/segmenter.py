"""The user API: ``Segmenter.from_pretrained(path)``, then ``segment(image, prompts)``.

Like segment-anything's predictor, it hides resizing, padding and coordinate transforms, and
splits the work: :meth:`Segmenter.encode_image` once per frame, :meth:`Segmenter.decode` once
per prompt set. Text embeddings are cached per phrase.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .click_constraints import cut_by_negative_clicks
from .engine.base import Engine, Features
from .engine.torch_engine import TorchEngine
from .model.build import AnySEEM, build_model, load_model
from .model.card import ModelCard
from .official_prompts import (
    OfficialLayout,
    OfficialReference,
    build_official_prompt_tensors,
    reference_pixels,
)
from .postprocess import GenericSettings, generic_instances, prompted_masks, sigmoid
from .prompt_encoding import PromptLayout, build_prompt_tensors, reference_samples
from .prompts import (
    ClassNames,
    MemoryPrompt,
    PromptError,
    PromptLike,
    PromptSet,
    ReferenceRegion,
    as_prompt_set,
)
from .results import Instance, SegmentationResult, paint_instance_ids
from .transforms import ResizeTransform

MAX_IMAGE_PIXELS = 7680 * 4320
TEXT_CACHE_SIZE = 4096


class ImageError(ValueError):
    """The image cannot be segmented (wrong shape, dtype, empty or too large)."""


def as_rgb_image(image: np.ndarray) -> np.ndarray:
    """Accept HxWx3 uint8 RGB (also HxW grey or HxWx4 RGBA); reject anything else clearly."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(f"image must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(f"image must be HxWx3 RGB, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"image is empty: {array.shape}")
    if array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"image {array.shape[1]}x{array.shape[0]} exceeds {MAX_IMAGE_PIXELS} pixels"
        )
    return array[..., :3]


@dataclass
class EncodedImage:
    """One image after the heavy encoder: reuse it for any number of prompt sets."""

    transform: ResizeTransform
    features: Features


class Segmenter:
    """SEEM inference on numpy images of any size.

    Args:
        model: the PyTorch model (always used for text and reference-region embeddings).
        card: its model card (vocabulary, stuff classes, provenance).
        engine: runs encode/decode (default: PyTorch on ``device``).
        score_threshold, max_instances: generic-segmentation filtering.
        negative_click_cut: remove from each prompted mask the pixels its negative clicks claim
            (:mod:`seem_ros.click_constraints`); off gives the model's masks unchanged. Default:
            on for our models, off for the official SEEM models (their masks stay the model's).
    """

    def __init__(
        self,
        model: AnySEEM,
        card: ModelCard,
        *,
        engine: Engine | None = None,
        device: str = "cpu",
        score_threshold: float = 0.5,
        max_instances: int = 50,
        negative_click_cut: bool | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.official = model.config.family == "official_v1"
        if negative_click_cut is None:
            negative_click_cut = not self.official
        self.negative_click_cut = negative_click_cut
        self.card = card
        self.device = torch.device(device)
        self.engine = engine or TorchEngine(self.model, device=device)
        self.settings = GenericSettings(
            score_threshold=score_threshold, max_instances=max_instances
        )
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._phrase_cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._class_cache: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        self._class_cache.update(card.class_embedding_cache())
        # a tracked object re-uses one ReferenceRegion object frame after frame: encode it once
        self._reference_cache: weakref.WeakKeyDictionary[ReferenceRegion, np.ndarray] = (
            weakref.WeakKeyDictionary()
        )
        self._official_reference_cache: weakref.WeakKeyDictionary[
            ReferenceRegion, OfficialReference
        ] = weakref.WeakKeyDictionary()
        self.layout: PromptLayout | OfficialLayout = (
            OfficialLayout.of(model) if self.official else PromptLayout.of(model)
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str = "cpu", **kwargs: object
    ) -> Segmenter:
        """Load safetensors weights + model card (raises ``WeightsError`` on any problem)."""
        model, card = load_model(Path(path), device=device)
        return cls(model, card, device=device, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_config(cls, config: str = "tiny", *, seed: int = 0, **kwargs: object) -> Segmenter:
        """A randomly initialised model (tests, timing); its card says it is untrained."""
        model = build_model(config, seed=seed)
        card = ModelCard(
            config=model.config, trained=False, provenance={"init": f"random, seed {seed}"}
        )
        return cls(model, card, **kwargs)  # type: ignore[arg-type]

    @property
    def image_size(self) -> int:
        """Our models: the square input's side; official models: the input's short side."""
        return self.model.config.image_size

    def transform_for(self, height: int, width: int) -> ResizeTransform:
        """How an image of this size is resized and padded for this model."""
        if self.official and self.model.config.official.backbone_type == "sam_vit":
            # the SAM ViT's fixed square input: longest side to 1024, mean-padded (upstream)
            return ResizeTransform(
                height,
                width,
                self.image_size,
                pad_value=self.model.config.pixel_mean,
            )
        if self.official:
            spec = self.model.config.official
            return ResizeTransform(
                height,
                width,
                self.image_size,
                fit="shortest",
                divisor=spec.size_divisibility,
                pad_value=self.model.config.pixel_mean,
            )
        # our models: longest side to the square input, letterboxed with the pixel mean (zero
        # after normalisation), as the training recipe letterboxes non-square frames
        return ResizeTransform(
            height, width, self.image_size, pad_value=self.model.config.pixel_mean
        )

    # ------------------------------------------------------------------ embeddings
    @torch.inference_mode()
    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        """(N, E) unit embeddings, cached per phrase."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            embeds = self.model.encode_text(missing).float().cpu().numpy()
            for text, embed in zip(missing, embeds):
                self._text_cache[text] = embed
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        for text in texts:
            self._text_cache.move_to_end(text)
        return (
            np.stack([self._text_cache[t] for t in texts])
            if texts
            else np.zeros((0, self.layout.embed_dim), np.float32)
        )

    @torch.inference_mode()
    def class_embeddings(self, classes: list[str]) -> np.ndarray:
        """The class names' embeddings that generic segmentation classifies against: our
        models embed each name as one sentence; official models average the name's prompt
        templates and append the official "background" entry (C + 1 rows). Cached per list;
        the card's precomputed vocabularies (COCO panoptic for converted models) are free."""
        key = tuple(classes)
        if key not in self._class_cache:
            if self.official:
                embeds = self.model.embed_class_names(list(classes)).float().cpu().numpy()
            else:
                embeds = self.text_embeddings(list(classes))
            self._class_cache[key] = embeds
            while len(self._class_cache) > 16:
                self._class_cache.popitem(last=False)
        self._class_cache.move_to_end(key)
        return self._class_cache[key]

    @torch.inference_mode()
    def phrase_embedding(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Official models: a referring phrase's (token embeddings (T, E), sentence (E,))."""
        if text not in self._phrase_cache:
            tokens, sentence = self.model.phrase_tokens(text)
            self._phrase_cache[text] = (
                tokens.float().cpu().numpy(),
                sentence.float().cpu().numpy(),
            )
            while len(self._phrase_cache) > TEXT_CACHE_SIZE:
                self._phrase_cache.popitem(last=False)
        self._phrase_cache.move_to_end(text)
        return self._phrase_cache[text]

    @torch.inference_mode()
    def reference_token(self, region: ReferenceRegion) -> np.ndarray:
        """(D,) token for a region of another image (encodes that image once)."""
        cached = self._reference_cache.get(region)
        if cached is not None:
            return cached
        transform, coords, valid = reference_samples(
            region, self.image_size, self.layout, pad_value=self.model.config.pixel_mean
        )
        features = self.engine.encode(transform.image_to_input(region.image)[None])
        mask_features = torch.from_numpy(np.asarray(features[0], dtype=np.float32)).to(self.device)
        token = self.model.reference_token(
            mask_features,
            torch.from_numpy(coords[None]).to(self.device),
            torch.from_numpy(valid[None]).to(self.device),
        )
        result = token[0].float().cpu().numpy()
        self._reference_cache[region] = result
        return result

    @torch.inference_mode()
    def official_reference(self, region: ReferenceRegion) -> OfficialReference:
        """Official models: a region of another image as the official "refimg" tokens. The
        reference image is resized like any image for this model and run through the PyTorch
        model (an exported engine's input is fixed to the camera's size), once per region
        object."""
        cached = self._official_reference_cache.get(region)
        if cached is not None:
            return cached
        assert isinstance(self.layout, OfficialLayout)
        image = as_rgb_image(region.image)
        transform = self.transform_for(image.shape[0], image.shape[1])
        coords = reference_pixels(region, transform, self.layout)
        tokens, mean = self.model.reference_prompt(
            torch.from_numpy(transform.image_to_input(image)[None]).to(self.device),
            torch.from_numpy(coords[None]).to(self.device),
            torch.ones(1, len(coords), device=self.device),
        )
        result = OfficialReference(
            tokens=tokens[0].float().cpu().numpy(), positive_mean=mean[0].float().cpu().numpy()
        )
        self._official_reference_cache[region] = result
        return result

    # ------------------------------------------------------------------ inference
    def encode_image(self, image: np.ndarray) -> EncodedImage:
        rgb = as_rgb_image(image)
        transform = self.transform_for(rgb.shape[0], rgb.shape[1])
        return EncodedImage(transform, self.engine.encode(transform.image_to_input(rgb)[None]))

    def segment(
        self,
        image: np.ndarray,
        prompts: PromptSet | PromptLike | list[PromptLike] | None = None,
        *,
        task: str = "instance",
    ) -> SegmentationResult:
        """Segment one image. With no prompts, the model card's vocabulary is used as classes."""
        rgb = as_rgb_image(image)
        prompt_set = as_prompt_set(prompts)
        prompt_set.validate(rgb.shape[:2])
        return self.decode(self.encode_image(rgb), prompt_set, task=task)

    def decode(
        self,
        encoded: EncodedImage,
        prompts: PromptSet | PromptLike | list[PromptLike] | None,
        *,
        task: str = "instance",
    ) -> SegmentationResult:
        """Decode prompts against an encoded image (any number of times per encoding)."""
        transform = encoded.transform
        prompt_set = as_prompt_set(prompts)
        prompt_set.validate((transform.height, transform.width))
        classes = self._classes_for(prompt_set)
        if isinstance(self.layout, OfficialLayout):
            tensors = build_official_prompt_tensors(
                prompt_set.objects,
                transform,
                self.layout,
                embed_phrase=self.phrase_embedding,
                embed_reference=self.official_reference,
            )
        else:
            tensors = build_prompt_tensors(
                prompt_set.objects,
                transform,
                self.layout,
                embed_text=lambda text: self.text_embeddings([text])[0],
                embed_reference=self.reference_token,
                slots=0,
                max_slots=self.engine.max_slots,
            )
        outputs = self.engine.decode(encoded.features, tensors)
        instances: list[Instance] = []
        semantic = None
        if classes:
            class_logits = self._classify(outputs["object_embeds"][0], classes)
            instances, semantic = generic_instances(
                outputs["object_masks"][0],
                class_logits,
                classes,
                transform,
                task=task,
                stuff_classes=self.card.stuff_classes,
                settings=self.settings,
            )
        instances += self._prompted_instances(prompt_set, outputs, transform)
        ids = paint_instance_ids(instances, (transform.height, transform.width))
        return SegmentationResult(instances, ids, task, tuple(classes), semantic)

    # ------------------------------------------------------------------ helpers
    def _classes_for(self, prompt_set: PromptSet) -> list[str]:
        if prompt_set.classes is not None:
            return list(prompt_set.classes.names)
        if not prompt_set.objects:
            if not self.card.vocabulary:
                raise PromptError("nothing to segment: give class names or an object prompt")
            return list(ClassNames(tuple(self.card.vocabulary)).names)
        return []

    @torch.inference_mode()
    def _classify(self, embeds: np.ndarray, classes: list[str]) -> np.ndarray:
        class_embeds = torch.from_numpy(self.class_embeddings(classes)).to(self.device)
        logits = self.model.classify(torch.from_numpy(embeds).to(self.device), class_embeds)
        return logits.float().cpu().numpy()

    def _prompted_instances(
        self, prompt_set: PromptSet, outputs: dict[str, np.ndarray], transform: ResizeTransform
    ) -> list[Instance]:
        count = len(prompt_set.objects)
        if count == 0:
            return []
        masks = prompted_masks(outputs["group_masks"][0, :count], transform)
        if self.official:
            # a referring answer is post-processed as the official grounding path does
            # (bicubic to the image); clicks and memory as the interactive path (bilinear)
            for index, obj in enumerate(prompt_set.objects):
                if obj.text is not None and not obj.has_visual and obj.memory is None:
                    logits = outputs["group_masks"][0, index : index + 1]
                    masks[index] = transform.logits_to_image_official(logits)[0] > 0.0
        scores = sigmoid(outputs["group_scores"][0, :count])
        instances = []
        for index, obj in enumerate(prompt_set.objects):
            mask = masks[index]
            if self.negative_click_cut:
                mask = cut_by_negative_clicks(mask, obj.points)
            # the next round starts from what the user saw, the cut mask
            memory = MemoryPrompt(mask=mask, tokens=outputs["memory"][0, index].copy())
            instances.append(
                Instance(
                    mask=mask,
                    label=obj.display_label,
                    score=float(scores[index]),
                    source="prompt",
                    object_index=index,
                    object_id=obj.object_id,
                    memory=memory,
                )
            )
        return instances
