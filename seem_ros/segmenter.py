"""The user API: ``Segmenter.from_pretrained(path)``, then ``segment(image, prompts)``.

Like segment-anything's predictor, it hides resizing, padding and coordinate transforms, and
splits the work: :meth:`Segmenter.encode_image` once per frame, :meth:`Segmenter.decode` once
per prompt set. Text embeddings are cached per phrase.

Two ways to build one: from a PyTorch model (``from_pretrained``, ``from_config``) or from an
export folder (``from_export``), which runs on ONNX Runtime or TensorRT without PyTorch
installed. Everything here but the first way is torch-free; the model-specific parts around
the engine's graphs are :class:`~seem_ros.runtime.heads.Heads`.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .click_constraints import cut_by_negative_clicks
from .engine.base import Engine, Features
from .model.card import ModelCard
from .object_continuity import keep_in_place
from .official_prompts import OfficialLayout, OfficialReference, build_official_prompt_tensors
from .phrase_grounding import grounded_query
from .postprocess import GenericSettings, generic_instances, prompted_masks, sigmoid
from .prompt_encoding import PromptLayout, build_prompt_tensors
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
from .runtime.heads import Heads
from .transforms import ResizeTransform, fit_inside, model_input_transform

if TYPE_CHECKING:
    from .model.build import AnySEEM

LOG = logging.getLogger(__name__)
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


def require_torch(what: str) -> None:
    """Raise ``WeightsError`` saying how to proceed when PyTorch is not installed.

    Raises:
        WeightsError: ``what`` needs PyTorch and it does not import.
    """
    try:
        import torch  # noqa: F401
    except ImportError as error:
        from .model.weights import WeightsError

        raise WeightsError(
            f"{what}, which needs PyTorch ({error}): pip install 'seem_ros[torch]'; or run an "
            "export folder without PyTorch (`seem-ros export --model WEIGHTS --out DIR` where "
            "PyTorch is installed, then use DIR as the model)"
        ) from error


@dataclass
class EncodedImage:
    """One image after the heavy encoder: reuse it for any number of prompt sets."""

    transform: ResizeTransform
    features: Features


class Segmenter:
    """SEEM inference on numpy images of any size.

    Args:
        model: the PyTorch model, or None for a segmenter without PyTorch (then ``engine`` and
            ``heads`` are required; see :meth:`from_export`).
        card: its model card (architecture, vocabulary, stuff classes, provenance).
        engine: runs encode/decode (default: PyTorch on ``device``).
        heads: text and class embeddings, reference tokens, class scores (default: the
            PyTorch model's, :class:`~seem_ros.runtime.heads.TorchHeads`).
        score_threshold, max_instances: generic-segmentation filtering.
        negative_click_cut: remove from each prompted mask the pixels its negative clicks claim
            (:mod:`seem_ros.click_constraints`); off gives the model's masks unchanged. Default:
            on for our models, off for the official SEEM models (their masks stay the model's).
        phrase_grounding: answer a text-only object prompt with the generic object query that
            best agrees with its group mask and its phrase (:mod:`seem_ros.phrase_grounding`);
            off gives the group's own mask. Default: on for our models, off for the official
            SEEM models (their grounding path is the official one).
        object_continuity: drop the parts of each prompted mask away from where its clicks or
            its previous mask put the object (:mod:`seem_ros.object_continuity`); off gives the
            model's masks unchanged. Default: on for our models, off for the official SEEM
            models.
    """

    def __init__(
        self,
        model: AnySEEM | None,
        card: ModelCard,
        *,
        engine: Engine | None = None,
        heads: Heads | None = None,
        device: str = "cpu",
        score_threshold: float = 0.5,
        max_instances: int = 50,
        negative_click_cut: bool | None = None,
        phrase_grounding: bool | None = None,
        object_continuity: bool | None = None,
    ) -> None:
        self.device = str(device)
        self.model = model.to(device).eval() if model is not None else None
        if self.model is not None:
            from .engine.torch_engine import TorchEngine
            from .runtime.heads import TorchHeads

            engine = engine or TorchEngine(self.model, device=device)
            heads = heads or TorchHeads(self.model, device=self.device)
        if engine is None or heads is None:
            raise ValueError("a Segmenter without a PyTorch model needs an engine and heads")
        self.config = self.model.config if self.model is not None else card.config
        self.official = self.config.family == "official_v1"
        if negative_click_cut is None:
            negative_click_cut = not self.official
        self.negative_click_cut = negative_click_cut
        if object_continuity is None:
            object_continuity = not self.official
        self.object_continuity = object_continuity
        if phrase_grounding is None:
            phrase_grounding = not self.official
        if phrase_grounding and self.official:
            raise ValueError("phrase_grounding is for our models; official ones ground their way")
        self.phrase_grounding = phrase_grounding
        self.card = card
        self.engine = engine
        self.heads = heads
        self.settings = GenericSettings(
            score_threshold=score_threshold, max_instances=max_instances
        )
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._letterboxed_shapes: set[tuple[int, int]] = set()  # warned about once each
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
            OfficialLayout.from_config(self.config)
            if self.official
            else PromptLayout.from_config(self.config)
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str = "cpu", **kwargs: object
    ) -> Segmenter:
        """Load safetensors weights + model card (raises ``WeightsError`` on any problem,
        PyTorch missing included)."""
        require_torch(f"{path} holds PyTorch weights")
        from .model.build import load_model

        model, card = load_model(Path(path), device=device)
        return cls(model, card, device=device, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_config(cls, config: str = "tiny", *, seed: int = 0, **kwargs: object) -> Segmenter:
        """A randomly initialised model (tests, timing); its card says it is untrained."""
        require_torch(f"a randomly initialised {config!r} model")
        from .model.build import build_model

        model = build_model(config, seed=seed)
        card = ModelCard(
            config=model.config, trained=False, provenance={"init": f"random, seed {seed}"}
        )
        return cls(model, card, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_export(
        cls,
        folder: str | Path,
        *,
        backend: str = "auto",
        precision: str = "auto",
        cache_dir: Path | None = None,
        threads: int | None = None,
        **kwargs: object,
    ) -> Segmenter:
        """A segmenter that runs an export folder (``seem-ros export``) without PyTorch.

        Args:
            backend: ``auto`` (TensorRT, then ONNX Runtime: the first that works), ``tensorrt``
                or ``onnxruntime``.
            precision: ``auto`` (FP16 where a GPU is present), ``fp32`` or ``fp16``.
            cache_dir: built TensorRT engines and FP16 graphs (default: the user cache).
            threads: CPU threads for ONNX Runtime (default: physical cores).
        Raises:
            WeightsError: the folder is not an export, or predates the torch-free runtime.
            EngineError: no asked-for backend runs here (the message says why).
        """
        from .engine.selection import create_export_engine
        from .runtime.export_folder import load_export
        from .runtime.exported_heads import ExportedHeads

        manifest, card = load_export(Path(folder))
        engine = create_export_engine(
            backend, manifest, precision=precision, cache_dir=cache_dir, threads=threads
        )
        heads = ExportedHeads(manifest, card, text_threads=threads)
        return cls(None, card, engine=engine, heads=heads, **kwargs)  # type: ignore[arg-type]

    @property
    def image_size(self) -> int:
        """The input's short side (our models' inputs are square for square frames)."""
        return self.config.image_size

    def transform_for(self, height: int, width: int, *, frame: bool = True) -> ResizeTransform:
        """How an image of this size is resized and padded for this model. An exported graph
        takes one input shape: our models fit a frame of another shape inside it, letterboxed
        (export for the camera's shape, ``seem-ros export --frame-size``, to keep its scale),
        and say so once per frame shape (``frame=False``: an image that is not a camera frame,
        such as a reference crop, is fitted without a word); official models need the graph
        made for the frame's shape."""
        transform = model_input_transform(self.config, height, width)
        fixed = self.engine.input_hw
        if fixed is None or self.official or transform.input_hw == tuple(fixed):
            return transform
        boxed = fit_inside(height, width, tuple(fixed), self.config.pixel_mean)
        if frame and (height, width) not in self._letterboxed_shapes:
            self._letterboxed_shapes.add((height, width))
            LOG.warning(
                "%dx%d frames are letterboxed into the engine's %dx%d input, so objects are "
                "seen at %.2f of the model's scale; export for this camera "
                "(seem-ros export --frame-size %dx%d) to keep it",
                width,
                height,
                fixed[1],
                fixed[0],
                boxed.scale / transform.scale,
                width,
                height,
            )
        return boxed

    # ------------------------------------------------------------------ embeddings
    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        """(N, E) unit embeddings, cached per phrase."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            embeds = self.heads.embed_texts(missing)
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

    def class_embeddings(self, classes: list[str]) -> np.ndarray:
        """The class names' embeddings that generic segmentation classifies against: our
        models embed each name as one sentence; official models average the name's prompt
        templates and append the official "background" entry (C + 1 rows). Cached per list;
        the card's precomputed vocabularies (COCO panoptic for converted models) are free."""
        key = tuple(classes)
        if key not in self._class_cache:
            if self.heads.official_text:
                embeds = self.heads.embed_class_names(list(classes))
            else:
                embeds = self.text_embeddings(list(classes))
            self._class_cache[key] = embeds
            while len(self._class_cache) > 16:
                self._class_cache.popitem(last=False)
        self._class_cache.move_to_end(key)
        return self._class_cache[key]

    def phrase_embedding(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Official models: a referring phrase's (token embeddings (T, E), sentence (E,))."""
        if text not in self._phrase_cache:
            self._phrase_cache[text] = self.heads.phrase_tokens(text)
            while len(self._phrase_cache) > TEXT_CACHE_SIZE:
                self._phrase_cache.popitem(last=False)
        self._phrase_cache.move_to_end(text)
        return self._phrase_cache[text]

    def reference_token(self, region: ReferenceRegion) -> np.ndarray:
        """(D,) token for a region of another image (encodes that image once)."""
        cached = self._reference_cache.get(region)
        if cached is not None:
            return cached
        assert isinstance(self.layout, PromptLayout)
        transform = self.transform_for(*region.image.shape[:2], frame=False)
        result = self.heads.reference_token(region, transform, self.layout, self.engine.encode)
        self._reference_cache[region] = result
        return result

    def official_reference(self, region: ReferenceRegion) -> OfficialReference:
        """Official models: a region of another image as the official "refimg" tokens, once
        per region object (see the heads for how the reference image is encoded)."""
        cached = self._official_reference_cache.get(region)
        if cached is not None:
            return cached
        assert isinstance(self.layout, OfficialLayout)
        result = self.heads.official_reference(region, self.layout, self.engine.encode)
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
        outputs = self.decode_outputs(encoded, prompt_set)
        instances: list[Instance] = []
        semantic = None
        if classes:
            class_logits = self.classify(outputs["object_embeds"][0], classes)
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

    def decode_outputs(self, encoded: EncodedImage, prompt_set: PromptSet) -> dict[str, np.ndarray]:
        """The decoder's raw outputs (:data:`~seem_ros.engine.base.DECODER_OUTPUTS`, on the
        model's grid) for a validated prompt set: what :meth:`decode` post-processes, and what
        a distillation teacher stores."""
        transform = encoded.transform
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
        return self.engine.decode(encoded.features, tensors)

    # ------------------------------------------------------------------ helpers
    def _classes_for(self, prompt_set: PromptSet) -> list[str]:
        if prompt_set.classes is not None:
            return list(prompt_set.classes.names)
        if not prompt_set.objects:
            if not self.card.vocabulary:
                raise PromptError("nothing to segment: give class names or an object prompt")
            return list(ClassNames(tuple(self.card.vocabulary)).names)
        return []

    def classify(self, embeds: np.ndarray, classes: list[str]) -> np.ndarray:
        """(N, E) output embeddings -> (N, C + 1) class logits; the last column is "no
        object" (the official models' background)."""
        return self.heads.classify(embeds, self.class_embeddings(classes))

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
        elif self.phrase_grounding:
            self._ground_phrases(prompt_set, outputs, transform, masks)
        scores = sigmoid(outputs["group_scores"][0, :count])
        instances = []
        for index, obj in enumerate(prompt_set.objects):
            mask = masks[index]
            if self.negative_click_cut:
                mask = cut_by_negative_clicks(mask, obj.points)
            if self.object_continuity:
                mask = keep_in_place(mask, obj)
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

    @contextmanager
    def network_masks(self) -> Iterator[None]:
        """Within the block, prompted masks are the network's own: no negative-click cut, no
        continuity rule (what the benchmark's ``*_model_only`` numbers measure)."""
        saved = self.negative_click_cut, self.object_continuity
        self.negative_click_cut = self.object_continuity = False
        try:
            yield
        finally:
            self.negative_click_cut, self.object_continuity = saved

    def _ground_phrases(
        self,
        prompt_set: PromptSet,
        outputs: dict[str, np.ndarray],
        transform: ResizeTransform,
        masks: np.ndarray,
    ) -> None:
        """Replace, in place, each text-only object's mask by its grounded query's mask."""
        learned = outputs.get("group_grounding")
        for index, obj in enumerate(prompt_set.objects):
            if obj.text is None or obj.has_visual or obj.memory is not None or obj.reference:
                continue
            query = grounded_query(
                outputs["group_masks"][0, index],
                outputs["object_masks"][0],
                self.text_embeddings([obj.text.text])[0],
                outputs["object_embeds"][0],
                learned_scores=None if learned is None else learned[0, index],
            )
            if query is not None:
                logits = outputs["object_masks"][0, query : query + 1]
                masks[index] = prompted_masks(logits, transform)[0]
