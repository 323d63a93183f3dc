"""What the :class:`~seem_ros.segmenter.Segmenter` computes outside the encode and decode graphs.

The heavy work runs in an :class:`~seem_ros.engine.base.Engine` (``encode``, ``decode``); the
rest of a prompt's way into the decoder and of the answer's way out is small and lives here:
text and class-name embeddings, a referring phrase's tokens (official models), the token of a
region of another image, and the class scores of the decoder's output embeddings. One
interface, two implementations: :class:`TorchHeads` runs the PyTorch model,
:class:`~seem_ros.runtime.exported_heads.ExportedHeads` runs an export folder without torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..engine.base import Features
from ..official_prompts import OfficialLayout, OfficialReference, reference_pixels
from ..prompt_encoding import PromptLayout, reference_samples
from ..prompts import PromptError, ReferenceRegion
from ..transforms import ResizeTransform, model_input_transform

if TYPE_CHECKING:
    from ..model.build import AnySEEM
    from ..model.config import ModelConfig

Encode = Callable[[np.ndarray], Features]
"""An engine's ``encode``: (1, 3, H, W) float32 0..255 -> the feature maps."""


class Heads(ABC):
    """The model's parts around the two graphs, numpy in and out.

    Args:
        config: the model's architecture (family, sizes).
    """

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.official = config.family == "official_v1"
        # class names are templated and classified with a background row: the official
        # models, and students holding the official language encoder as their text tower
        self.official_text = self.official or config.text.tower == "official_v1"

    # ------------------------------------------------------------------ text
    @abstractmethod
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """texts -> (N, E) unit embeddings, each text one sentence (class names of our models
        and referring phrases alike)."""

    def embed_class_names(self, names: list[str]) -> np.ndarray:
        """Official text towers: class names -> (C + 1, E), each name's prompt templates
        averaged, then the official "background" entry. Our models embed names with
        :meth:`embed_texts`."""
        raise PromptError("class-name templates belong to the official SEEM models")

    def phrase_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Official models: a referring phrase -> (token embeddings (T, E), sentence (E,))."""
        raise PromptError("phrase tokens belong to the official SEEM models")

    # ------------------------------------------------------------------ regions of other images
    def reference_token(
        self,
        region: ReferenceRegion,
        transform: ResizeTransform,
        layout: PromptLayout,
        encode: Encode,
    ) -> np.ndarray:
        """Our models: a region of another image -> (D,) prompt token. The image is encoded by
        ``encode`` after ``transform`` (the one a frame of its size gets)."""
        coords, valid = reference_samples(region, transform, layout)
        features = encode(transform.image_to_input(region.image)[None])
        return self._pool_reference(np.asarray(features[0], dtype=np.float32), coords, valid)

    def _pool_reference(
        self, mask_features: np.ndarray, coords: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        """mask features (1, D, h, w) of the reference image, samples (S, 2) in [0, 1] and
        their validity (S,) -> (D,) token (``VisualSampler.reference``)."""
        raise PromptError("reference tokens of this kind belong to our models")

    def official_reference(
        self, region: ReferenceRegion, layout: OfficialLayout, encode: Encode
    ) -> OfficialReference:
        """Official models: a region of another image as the official "refimg" tokens."""
        raise PromptError("official reference tokens belong to the official SEEM models")

    # ------------------------------------------------------------------ scores
    @abstractmethod
    def classify(self, embeds: np.ndarray, class_embeds: np.ndarray) -> np.ndarray:
        """(N, E) decoder output embeddings x class embeddings -> (N, C + 1) logits; the last
        column is "no object" (our models: the void logit; official: "background")."""


class TorchHeads(Heads):
    """The heads of a PyTorch model (the reference the exported ones are tested against).

    Args:
        model: the model, already on ``device``.
        device: where its inputs go.
    """

    def __init__(self, model: AnySEEM, *, device: str = "cpu") -> None:
        super().__init__(model.config)
        self.model = model
        self.device = device

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_text(texts).float().cpu().numpy()

    def embed_class_names(self, names: list[str]) -> np.ndarray:
        import torch

        if not self.official_text:
            return super().embed_class_names(names)
        with torch.inference_mode():
            return self.model.embed_class_names(list(names)).float().cpu().numpy()

    def phrase_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        if not self.official:
            return super().phrase_tokens(text)
        tokens, sentence = self.model.phrase_tokens(text)
        return tokens.float().cpu().numpy(), sentence.float().cpu().numpy()

    def _pool_reference(
        self, mask_features: np.ndarray, coords: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        import torch

        with torch.inference_mode():
            token = self.model.reference_token(
                torch.from_numpy(mask_features).to(self.device),
                torch.from_numpy(coords[None]).to(self.device),
                torch.from_numpy(valid[None]).to(self.device),
            )
        return token[0].float().cpu().numpy()

    def official_reference(
        self, region: ReferenceRegion, layout: OfficialLayout, encode: Encode
    ) -> OfficialReference:
        """The reference image is resized like any image for this model and run through the
        PyTorch model at its own size (``encode`` is not used: an exported engine's input is
        fixed to the camera's size)."""
        import torch

        del encode
        image = region.image[..., :3]
        transform = model_input_transform(self.config, image.shape[0], image.shape[1])
        coords = reference_pixels(region, transform, layout)
        with torch.inference_mode():
            tokens, mean = self.model.reference_prompt(
                torch.from_numpy(transform.image_to_input(image)[None]).to(self.device),
                torch.from_numpy(coords[None]).to(self.device),
                torch.ones(1, len(coords), device=self.device),
            )
        return OfficialReference(
            tokens=tokens[0].float().cpu().numpy(), positive_mean=mean[0].float().cpu().numpy()
        )

    def classify(self, embeds: np.ndarray, class_embeds: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.model.classify(
                torch.from_numpy(embeds).to(self.device),
                torch.from_numpy(class_embeds).to(self.device),
            )
        return logits.float().cpu().numpy()
