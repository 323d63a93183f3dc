"""The official SEEM v1 model: FocalNet -> pixel decoder -> SEEM decoder, plus the language
encoder, with the upstream module tree (``backbone``, ``sem_seg_head.pixel_decoder``,
``sem_seg_head.predictor``, ``sem_seg_head.predictor.lang_encoder``) so that an official
checkpoint's state dict loads without renaming.

It offers the same two-graph interface as our own :class:`~seem_ros.model.seem.SEEM`:
:meth:`OfficialSEEM.encode` once per frame, :meth:`OfficialSEEM.decode` once per prompt set.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..feature_names import OFFICIAL_FEATURE_NAMES as OFFICIAL_FEATURE_NAMES  # re-export
from .decoder import OfficialSEEMDecoder
from .deform_pixel_decoder import MSDeformAttnPixelDecoder
from .focalnet import FocalNet
from .language import LanguageEncoder
from .pixel_decoder import TransformerEncoderPixelDecoder
from .prompt_tensors import OfficialPromptTensors
from .sam_vit import SamViT
from .vocabulary import BACKGROUND

Features = tuple[torch.Tensor, ...]


class SemSegHead(nn.Module):
    """Holds the pixel decoder and the predictor under the upstream names."""

    def __init__(self, pixel_decoder: nn.Module, predictor: OfficialSEEMDecoder) -> None:
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor


class OfficialSEEM(nn.Module):
    """Args:
    config: a ``family: official_v1`` model config (``seem_focalt_v1``, ``seem_focall_v1``).
    """

    family = "official_v1"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.official is None:
            raise ValueError(f"config {config.name!r} has no 'official' section")
        self.config = config
        spec = config.official
        self.backbone: FocalNet | SamViT
        if spec.backbone_type == "sam_vit":
            self.backbone = SamViT(**spec.backbone)
        else:
            self.backbone = FocalNet(**spec.backbone)
        pixel_decoder: TransformerEncoderPixelDecoder | MSDeformAttnPixelDecoder
        if spec.pixel_decoder == "transformer_encoder_deform":
            # the deformable encoder's FFN width is fixed upstream (not DIM_FEEDFORWARD)
            pixel_decoder = MSDeformAttnPixelDecoder(
                in_channels=self.backbone.out_channels,
                conv_dim=spec.conv_dim,
                mask_dim=spec.mask_dim,
                num_heads=spec.num_heads,
                num_encoder_layers=spec.encoder_layers,
            )
        else:
            pixel_decoder = TransformerEncoderPixelDecoder(
                in_channels=self.backbone.out_channels,
                conv_dim=spec.conv_dim,
                mask_dim=spec.mask_dim,
                num_heads=spec.num_heads,
                dim_feedforward=spec.ffn_dim,
                num_encoder_layers=spec.encoder_layers,
            )
        lang_encoder = LanguageEncoder(
            context_length=spec.text_context_length,
            vocab_size=spec.text_vocab_size,
            width=spec.text_width,
            layers=spec.text_layers,
            heads=spec.text_heads,
            dim_proj=spec.dim_proj,
        )
        predictor = OfficialSEEMDecoder(
            lang_encoder=lang_encoder,
            hidden_dim=spec.hidden_dim,
            dim_proj=spec.dim_proj,
            mask_dim=spec.mask_dim,
            num_queries=spec.num_queries,
            num_layers=spec.decoder_layers,
            num_heads=spec.num_heads,
            ffn_dim=spec.ffn_dim,
            spatial_memories=spec.spatial_memories,
            spatial_queries=spec.spatial_queries,
        )
        self.sem_seg_head = SemSegHead(pixel_decoder, predictor)
        # in every official checkpoint (the 3x3 dilation of a simulated click)
        self.register_buffer("dilation_kernel", torch.ones(1, 1, 3, 3))
        self._register_pixel_statistics()

    def _register_pixel_statistics(self, device: torch.device | str | None = None) -> None:
        for name in ("pixel_mean", "pixel_std"):
            values = torch.tensor(getattr(self.config, name), device=device).view(1, 3, 1, 1)
            self.register_buffer(name, values, persistent=False)

    @classmethod
    def from_state_dict(cls, config: ModelConfig, state: dict[str, torch.Tensor]) -> OfficialSEEM:
        """The model holding ``state`` (official keys, strict), built without first filling
        165-440 M parameters with random values only to overwrite them."""
        with torch.device("meta"):
            model = cls(config)
        model.load_state_dict(state, strict=True, assign=True)
        model._register_pixel_statistics(device=state["dilation_kernel"].device)
        return model.eval()

    @property
    def predictor(self) -> OfficialSEEMDecoder:
        return self.sem_seg_head.predictor

    @property
    def language(self) -> LanguageEncoder:
        return self.sem_seg_head.predictor.lang_encoder

    @property
    def mask_stride(self) -> int:
        return 4

    # ------------------------------------------------------------------ graphs
    def encode(self, image: torch.Tensor) -> Features:
        """image (B, 3, H, W) float RGB 0..255, H and W multiples of 32 -> the
        :data:`OFFICIAL_FEATURE_NAMES`: mask features (B, 512, H/4, W/4), the 1/32, 1/16 and
        1/8 maps (B, 512, H/s, W/s), then the decoder's per-image tensors."""
        normalised = (image - self.pixel_mean) / self.pixel_std
        mask_features, levels = self.sem_seg_head.pixel_decoder(self.backbone(normalised))
        return (mask_features, *levels, *self.predictor.per_image(mask_features, levels))

    def decode(self, features: Features, prompts: OfficialPromptTensors) -> dict[str, torch.Tensor]:
        """Features of one batch + prompt tensors -> outputs (see ``OfficialSEEMDecoder``)."""
        mask_features, *rest = features
        levels, per_image = list(rest[:3]), list(rest[3:])
        return self.predictor(mask_features, levels, prompts, per_image or None)

    def reference_prompt(
        self, image: torch.Tensor, coords: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A region of a reference image (official ``evaluate_referring_image``, deterministic):
        image (B, 3, H, W) as for :meth:`encode`, the region's pixels ``coords`` (B, S, 2) as
        x / W, y / H of that input and ``valid`` (B, S) -> the region's spatial tokens
        (B, 3, S, D) per level and its mean mask feature (B, C); see
        ``OfficialSEEMDecoder.reference_prompt``."""
        normalised = (image - self.pixel_mean) / self.pixel_std
        mask_features, levels = self.sem_seg_head.pixel_decoder(self.backbone(normalised))
        return self.predictor.reference_prompt(mask_features, list(levels), coords, valid)

    # ------------------------------------------------------------------ language
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """texts -> (N, E) unit embeddings of each text as one sentence (no templates)."""
        return self.language.encode_sentences(texts)

    def embed_class_names(self, names: list[str], *, progress: bool = False) -> torch.Tensor:
        """class names -> (C + 1, E): each name's prompt templates averaged, as the official
        model embeds its evaluation vocabulary, then the official "background" entry."""
        return self.language.class_embeddings([*names, BACKGROUND], progress=progress)

    def phrase_tokens(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A referring phrase -> (its token embeddings (T, E), its sentence embedding (E,))."""
        grounding = self.language.grounding_tokens(text)
        return grounding.tokens, grounding.sentence

    def classify(self, embeds: torch.Tensor, class_embeds: torch.Tensor) -> torch.Tensor:
        """(..., E) class embeddings x (C + 1, E) from :meth:`embed_class_names` -> (..., C + 1)
        logits; the last column, "background", plays "no object"."""
        return self.language.similarity(embeds, class_embeds)
