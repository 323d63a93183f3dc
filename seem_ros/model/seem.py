"""SEEM: one model for every prompt. Glues backbone, pixel decoder, text encoder, sampler, decoder.

Inference is split in two graphs: :meth:`SEEM.encode` (image -> features, once per frame) and
:meth:`SEEM.decode` (features + prompts -> masks, once per prompt set), so one encoding serves
many prompts and both export to ONNX separately.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .backbone import build_backbone
from .config import ModelConfig, TextConfig
from .decoder import SEEMDecoder
from .feature_names import FEATURE_NAMES as FEATURE_NAMES  # re-export
from .official.language import LanguageEncoder
from .official.vocabulary import BACKGROUND as OFFICIAL_BACKGROUND
from .pixel_decoder import PixelDecoder
from .prompt_tensors import PromptTensors
from .text_encoder import TextEncoder
from .visual_sampler import VisualSampler

Features = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class SEEM(nn.Module):
    """Args:
    config: sizes of every part (see ``seem_ros/model/configs``).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.decoder.hidden_dim
        self.backbone = build_backbone(config.backbone)
        self.pixel_decoder = PixelDecoder(
            in_channels=self.backbone.out_channels,
            hidden_dim=dim,
            context_blocks=config.decoder.pixel_context_blocks,
        )
        self.text_encoder = build_text_tower(config.text)
        self.sampler = VisualSampler(dim=dim)
        self.decoder = SEEMDecoder(
            dim=dim,
            embed_dim=config.text.embed_dim,
            num_queries=config.decoder.num_queries,
            num_layers=config.decoder.num_layers,
            num_heads=config.decoder.num_heads,
            ffn_dim=config.decoder.ffn_dim,
            memory_tokens=config.decoder.memory_tokens,
            prompt_to_pixel_heads=config.decoder.prompt_to_pixel_heads,
            click_distance_hidden=config.decoder.click_distance_hidden,
            grounding_hidden=config.decoder.grounding_hidden,
        )
        # CLIP-style temperature for cosine similarities in the joint space, and the logit of
        # "no object" that every class score competes with.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.void_logit = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std).view(1, 3, 1, 1), False)

    @property
    def mask_stride(self) -> int:
        return 4

    def encode(self, image: torch.Tensor) -> Features:
        """image (B, 3, S, S) float RGB in 0..255 -> (mask features (B, D, S/4, S/4),
        level_32, level_16, level_8 (B, D, S/s, S/s))."""
        normalised = (image - self.pixel_mean) / self.pixel_std
        mask_features, levels = self.pixel_decoder(self.backbone(normalised))
        return mask_features, levels[0], levels[1], levels[2]

    def decode(
        self, features: Features, prompts: PromptTensors, *, with_aux: bool = False
    ) -> dict[str, torch.Tensor | list[dict[str, torch.Tensor]]]:
        """Features of one batch of images + prompt tensors -> outputs (see ``SEEMDecoder``)."""
        mask_features, *levels = features
        visual_tokens = self.sampler(
            mask_features,
            prompts.visual_coords,
            prompts.visual_sample_valid,
            prompts.visual_kind,
            prompts.visual_positive,
        )
        return self.decoder(mask_features, levels, visual_tokens, prompts, with_aux=with_aux)

    @property
    def official_text(self) -> bool:
        """Whether the text tower is the official SEEM language encoder (a distilled
        student of an official teacher), whose class names are templated and classified
        against an extra "background" entry as the teacher does."""
        return isinstance(self.text_encoder, LanguageEncoder)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """texts -> (N, E) unit embeddings (class names and referring phrases alike)."""
        if isinstance(self.text_encoder, LanguageEncoder):
            return self.text_encoder.encode_sentences(texts).clone()
        return self.text_encoder.encode(texts)

    def embed_class_names(self, names: list[str], *, progress: bool = False) -> torch.Tensor:
        """Class names -> the rows :meth:`classify` compares with: one sentence per name for
        our text tower; the official tower's prompt templates plus its "background" entry
        (C + 1 rows) for the official one."""
        if isinstance(self.text_encoder, LanguageEncoder):
            return self.text_encoder.class_embeddings(
                [*names, OFFICIAL_BACKGROUND], progress=progress
            ).clone()
        return self.encode_text(names)

    def reference_token(
        self, mask_features: torch.Tensor, coords: torch.Tensor, sample_valid: torch.Tensor
    ) -> torch.Tensor:
        """A region of another (already encoded) image -> (B, D) prompt token."""
        return self.sampler.reference(mask_features, coords, sample_valid)

    def classify(self, embeds: torch.Tensor, class_embeds: torch.Tensor) -> torch.Tensor:
        """(..., E) output embeddings x (C, E) class embeddings -> (..., C + 1) logits; the last
        column is "no object". With the official text tower, ``class_embeds`` come from
        :meth:`embed_class_names` and already end with the background row, which plays "no
        object"."""
        if isinstance(self.text_encoder, LanguageEncoder):
            return self.text_encoder.similarity(embeds, class_embeds)
        logits = self.logit_scale.exp().clamp(max=100.0) * embeds @ class_embeds.t()
        void = self.void_logit.expand(*logits.shape[:-1], 1)
        return torch.cat([logits, void], dim=-1)

    def similarity(self, embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarity (..., E) x (..., E) -> (...): how well outputs match texts."""
        return self.logit_scale.exp().clamp(max=100.0) * (embeds * text_embeds).sum(-1)


def build_text_tower(config: TextConfig) -> TextEncoder | LanguageEncoder:
    """Our open_clip-style text transformer, or the official SEEM language encoder."""
    if config.tower == "official_v1":
        return LanguageEncoder(
            context_length=config.context_length,
            vocab_size=config.vocab_size,
            width=config.width,
            layers=config.layers,
            heads=config.heads,
            dim_proj=config.embed_dim,
        )
    return TextEncoder(config)
