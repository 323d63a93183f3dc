"""Hyper-parameters of the official SEEM v1 architecture (one dataclass, YAML-loadable).

Values come from the upstream configs (``configs/seem/*_unicl_lang_v1.yaml``); the named
configs live beside our own in ``seem_ros/model/configs/seem_*_v1.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BACKBONE_TYPES = ("focal", "sam_vit")
PIXEL_DECODERS = ("transformer_encoder_fpn", "transformer_encoder_deform")


@dataclass
class OfficialConfig:
    """Args:
    backbone_type: ``focal`` (``focalnet.FocalNet``) or ``sam_vit`` (``sam_vit.SamViT``);
        upstream ``MODEL.BACKBONE.NAME`` ``focal`` / ``focal_dw`` / ``vit``.
    backbone: the backbone's keyword arguments: FocalNet's (``variant``, ``embed_dim``,
        ``depths``, ``focal_levels``, ``focal_windows``, ...) or SamViT's (``embed_dim``,
        ``depth``, ``num_heads``, ``global_attn_indexes``, ...).
    pixel_decoder: ``transformer_encoder_fpn`` (``pixel_decoder.TransformerEncoderPixelDecoder``)
        or ``transformer_encoder_deform`` (``deform_pixel_decoder.MSDeformAttnPixelDecoder``);
        upstream ``MODEL.ENCODER.NAME``.
    conv_dim, mask_dim, encoder_layers: the pixel decoder (``MODEL.ENCODER``).
    hidden_dim, num_queries, decoder_layers, num_heads, ffn_dim: the SEEM decoder
        (``MODEL.DECODER``; ``decoder_layers`` is upstream ``DEC_LAYERS - 1``).
    dim_proj: the joint visual-text space (``MODEL.DIM_PROJ``).
    spatial_memories, spatial_queries, max_spatial_len: memory slots, queries per prompted
        object and prompt pixels per polarity (``ATTENTION_ARCH``, ``MAX_SPATIAL_LEN``).
    text_*: the language encoder (``MODEL.TEXT``).
    size_divisibility: inputs are padded to multiples of this.
    """

    backbone_type: str = "focal"
    backbone: dict[str, Any] = field(default_factory=dict)
    pixel_decoder: str = "transformer_encoder_fpn"
    conv_dim: int = 512
    mask_dim: int = 512
    encoder_layers: int = 6
    hidden_dim: int = 512
    num_queries: int = 101
    decoder_layers: int = 9
    num_heads: int = 8
    ffn_dim: int = 2048
    dim_proj: int = 512
    spatial_memories: int = 32
    spatial_queries: int = 3
    max_spatial_len: int = 512
    text_context_length: int = 77
    text_vocab_size: int = 49408
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    size_divisibility: int = 32

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OfficialConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys in model config section 'official': {sorted(unknown)}")
        values = dict(data)
        for key, choices in (
            ("backbone_type", BACKBONE_TYPES),
            ("pixel_decoder", PIXEL_DECODERS),
        ):
            if key in values and values[key] not in choices:
                raise ValueError(f"unknown official {key} {values[key]!r}; known: {choices}")
        if "backbone" in values:
            values["backbone"] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in values["backbone"].items()
            }
        return cls(**values)
