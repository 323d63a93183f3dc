"""The heads of an export folder: numpy and ``text_encoder.onnx``, no torch.

An export carries what they need besides the graphs (see
:class:`~seem_ros.engine.export_manifest.ExportManifest`): the model card, CLIP's BPE
vocabulary for the tokenizer, and ``heads.safetensors`` with the few tensors used outside the
graphs (:func:`head_tables` writes them at export time):

=========================== =========== =====================================================
name                        family      what
=========================== =========== =====================================================
``class_scale``             both        ``exp(logit_scale)`` (ours clamped at 100)
``void_logit``              ours        the "no object" logit every class competes with
``reference.proj.*``,       ours        ``VisualSampler.reference``: MLP, layer norm and the
``reference.norm.*``,                   reference embedding that turn a region's pooled
``reference.embed``                     mask features into a prompt token
``pn_indicator.positive``   official    added to reference-region tokens (positive pixels)
=========================== =========== =====================================================

Text runs through ``text_encoder.onnx`` on ONNX Runtime's CPU provider (once per phrase or
class list; the segmenter caches), also where the image graphs run on TensorRT.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.export_manifest import (
    OFFICIAL_TEXT_OUTPUTS,
    TEXT_INPUT,
    ExportError,
    ExportManifest,
)
from ..model.card import ModelCard
from ..model.official.vocabulary import BACKGROUND, PROMPT_TEMPLATES, prompt_name
from ..official_prompts import OfficialLayout, OfficialReference, reference_pixels
from ..prompts import PromptError, ReferenceRegion
from ..transforms import fit_inside, model_input_transform
from . import numpy_ops
from .heads import Encode, Heads
from .tokenizer import BytePairEncoding, ClipTokenizer, OpenClipTokenizer

if TYPE_CHECKING:
    from ..model.build import AnySEEM

LOG = logging.getLogger(__name__)

HEADS_FILE = "heads.safetensors"
CARD_FILE = "model_card.json"
TEXT_BATCH = 256
_NORM_EPS = 1e-7  # the official language encoder's normalisation epsilon
_OFFICIAL_LEVELS = (32, 16, 8)


def head_tables(model: AnySEEM) -> dict[str, np.ndarray]:
    """The tensors :class:`ExportedHeads` computes with, read from a PyTorch model (export
    time; no torch import here: the tensors' own methods convert them)."""

    def array(tensor: Any) -> np.ndarray:
        return np.array(tensor.detach().float().cpu().numpy(), dtype=np.float32)  # 0-d stays 0-d

    if model.config.family == "official_v1":
        return {
            "class_scale": array(model.language.logit_scale.exp()),
            "pn_indicator.positive": array(model.predictor.pn_indicator.weight[0]),
        }
    sampler = model.sampler
    # a student holding the official language encoder classifies with its similarity
    scale = (
        model.text_encoder.logit_scale.exp()
        if model.config.text.tower == "official_v1"
        else model.logit_scale.exp().clamp(max=100.0)
    )
    return {
        "class_scale": array(scale),
        "void_logit": array(model.void_logit),
        "reference.proj.0.weight": array(sampler.proj[0].weight),
        "reference.proj.0.bias": array(sampler.proj[0].bias),
        "reference.proj.2.weight": array(sampler.proj[2].weight),
        "reference.proj.2.bias": array(sampler.proj[2].bias),
        "reference.norm.weight": array(sampler.norm.weight),
        "reference.norm.bias": array(sampler.norm.bias),
        "reference.norm.eps": np.asarray(sampler.norm.eps, dtype=np.float32),
        "reference.embed": array(sampler.reference_embed),
    }


class ExportedHeads(Heads):
    """The heads of an export folder (see the module docstring).

    Args:
        manifest: the export; it must carry the runtime files (exports made since the
            torch-free runtime do).
        card: its model card.
        text_threads: ONNX Runtime threads for the text encoder (default: physical cores).
    """

    def __init__(
        self, manifest: ExportManifest, card: ModelCard, *, text_threads: int | None = None
    ) -> None:
        super().__init__(card.config)
        if manifest.heads is None:
            raise ExportError(f"{manifest.folder} has no {HEADS_FILE}: re-export it")
        from safetensors.numpy import load_file

        self.manifest = manifest
        self.tables = load_file(str(manifest.path(manifest.heads)))
        self.class_scale = float(self.tables["class_scale"])
        self.text_threads = text_threads
        self._tokenizer: OpenClipTokenizer | ClipTokenizer | None = None
        self._text_session: Any = None

    # ------------------------------------------------------------------ text
    def _text_unavailable(self, why: str) -> PromptError:
        return PromptError(
            f"class names and referring phrases cannot be embedded here: {why} (clicks, boxes, "
            "scribbles, masks, reference regions and memory still work)"
        )

    def _tokenizer_for(self) -> OpenClipTokenizer | ClipTokenizer:
        if self._tokenizer is None:
            if self.manifest.bpe_vocab is None:
                raise self._text_unavailable(f"{self.manifest.folder} has no BPE vocabulary")
            bpe = BytePairEncoding.load(self.manifest.path(self.manifest.bpe_vocab))
            if self.official:
                length = self.config.official.text_context_length
                self._tokenizer = ClipTokenizer(bpe, context_length=length)
            elif self.official_text:
                self._tokenizer = ClipTokenizer(bpe, context_length=self.config.text.context_length)
            else:
                length = self.config.text.context_length
                self._tokenizer = OpenClipTokenizer(bpe, context_length=length)
        return self._tokenizer

    def tokenize(self, texts: list[str]) -> np.ndarray:
        """texts -> (N, L) int64 token ids, as the PyTorch model's tokenizer gives them."""
        tokenizer = self._tokenizer_for()
        if isinstance(tokenizer, ClipTokenizer):
            return tokenizer(texts)[0]
        return tokenizer(texts)

    def _run_text(self, texts: list[str]) -> list[np.ndarray]:
        """The text graph's outputs for ``texts``, in batches of :data:`TEXT_BATCH`."""
        if self._text_session is None:
            self._text_session = self._open_text_session()
        chunks = [
            self._text_session.run(
                None, {TEXT_INPUT: self.tokenize(texts[start : start + TEXT_BATCH])}
            )
            for start in range(0, len(texts), TEXT_BATCH)
        ]
        return [
            np.concatenate([c[i] for c in chunks]).astype(np.float32) for i in range(len(chunks[0]))
        ]

    def _open_text_session(self) -> Any:
        if self.manifest.text_encoder is None:
            raise self._text_unavailable(
                f"{self.manifest.folder} was exported without its text encoder "
                "(re-export without --no-text-encoder)"
            )
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise self._text_unavailable(
                f"the text encoder runs on ONNX Runtime, which is not installed ({error}); "
                "pip install 'seem_ros[ort]' (or ort-gpu)"
            ) from error
        from ..engine.onnxruntime_engine import physical_cores

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.text_threads or physical_cores()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        path = self.manifest.path(self.manifest.text_encoder)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._embed_dim()), np.float32)
        if not self.official:
            return self._run_text(texts)[0]  # the graph normalises
        sentences = self._run_text(texts)[OFFICIAL_TEXT_OUTPUTS.index("sentence_embeds")]
        return numpy_ops.unit_rows(sentences, _NORM_EPS)

    def embed_class_names(self, names: list[str]) -> np.ndarray:
        """The official ``class_embeddings`` with templates: every template filled with each
        name (and "background"), each sentence a unit vector, a class the renormalised mean
        of its sentences."""
        if not self.official_text:
            return super().embed_class_names(names)
        filled = [prompt_name(name) for name in [*names, BACKGROUND]]
        sentences = [template.format(name) for template in PROMPT_TEMPLATES for name in filled]
        unit = self.embed_texts(sentences)
        mean = unit.reshape(len(PROMPT_TEMPLATES), len(filled), -1).mean(axis=0)
        return numpy_ops.unit_rows(mean)

    def phrase_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The official grounding tokens: the start, text and end tokens' projected states, and
        the (first) end-of-text state as the sentence. The text tower is causal, so the first T
        positions of the padded graph are those of the unpadded phrase."""
        if not self.official:
            return super().phrase_tokens(text)
        tokenizer = self._tokenizer_for()
        assert isinstance(tokenizer, ClipTokenizer)
        count = int(tokenizer([text])[1][0].sum())
        tokens, sentences = self._run_text([text])
        return tokens[0, :count].copy(), sentences[0].copy()

    def _embed_dim(self) -> int:
        return self.config.official.dim_proj if self.official else self.config.text.embed_dim

    # ------------------------------------------------------------------ regions of other images
    def _pool_reference(
        self, mask_features: np.ndarray, coords: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        if self.official:
            return super()._pool_reference(mask_features, coords, valid)
        t = self.tables
        sampled = numpy_ops.grid_sample(mask_features[0], coords * 2.0 - 1.0, align_corners=False)
        pooled = numpy_ops.masked_mean(sampled, valid)
        hidden = numpy_ops.linear(pooled, t["reference.proj.0.weight"], t["reference.proj.0.bias"])
        hidden = numpy_ops.linear(
            np.maximum(hidden, 0.0), t["reference.proj.2.weight"], t["reference.proj.2.bias"]
        )
        return numpy_ops.layer_norm(
            hidden + t["reference.embed"],
            t["reference.norm.weight"],
            t["reference.norm.bias"],
            float(t["reference.norm.eps"]),
        )

    def official_reference(
        self, region: ReferenceRegion, layout: OfficialLayout, encode: Encode
    ) -> OfficialReference:
        """The official "refimg" tokens from the exported encoder. A reference image that the
        model would resize to the exported input (e.g. an earlier frame of the camera) gives
        the PyTorch path's tokens; any other (a crop) is fitted into the exported input,
        aspect kept, and padded with the pixel mean, since the graph's input is fixed."""
        if not self.official:
            return super().official_reference(region, layout, encode)
        image = region.image
        input_h, input_w = self.manifest.image_shape[2:]
        transform = model_input_transform(self.config, image.shape[0], image.shape[1])
        if transform.input_hw == (input_h, input_w):
            canvas = transform.image_to_input(image)
            coords = reference_pixels(region, transform, layout)
        else:
            transform = fit_inside(*image.shape[:2], (input_h, input_w), self.config.pixel_mean)
            canvas = transform.image_to_input(image)
            coords = reference_pixels(region, transform, layout)
        features = dict(zip(self.manifest.feature_names, encode(canvas[None])))
        grid = coords.astype(np.float32) * 2.0 - 1.0
        sampled = numpy_ops.grid_sample(features["mask_features"][0], grid, align_corners=True)
        mean = sampled.mean(axis=0) if len(grid) else np.full(sampled.shape[1], -1.0, np.float32)
        indicator = self.tables["pn_indicator.positive"]
        tokens = [
            numpy_ops.grid_sample(features[f"spatial_map_{level}"][0], grid, align_corners=True)
            + indicator
            for level in _OFFICIAL_LEVELS
        ]
        return OfficialReference(
            tokens=np.stack(tokens).astype(np.float32), positive_mean=mean.astype(np.float32)
        )

    # ------------------------------------------------------------------ scores
    def classify(self, embeds: np.ndarray, class_embeds: np.ndarray) -> np.ndarray:
        """Ours: ``scale * embeds @ classes.T`` and the void logit; official:
        ``scale * unit(embeds) @ classes.T`` (the classes end with "background")."""
        embeds = np.asarray(embeds, dtype=np.float32)
        if self.official_text:
            return self.class_scale * numpy_ops.unit_rows(embeds, _NORM_EPS) @ class_embeds.T
        logits = self.class_scale * embeds @ np.asarray(class_embeds, np.float32).T
        void = np.broadcast_to(self.tables["void_logit"], (*logits.shape[:-1], 1))
        return np.concatenate([logits, void], axis=-1).astype(np.float32)
