"""Peer models timed through the same harness, with random weights (latency does not depend on
the weight values): SAM ViT-B, and a MobileSAM-class pipeline (timm's TinyViT-5M image encoder +
SAM's prompt encoder and mask decoder).

Each peer runs its whole click pipeline the way its predictor does: normalise, image encoder,
prompt encoder (one positive click), mask decoder (one mask), upsample the mask to the input.
Both run in PyTorch eager on the CPU, their reference implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

PROMPT_DIM = 256  # SAM's prompt / mask-decoder width
PATCH = 16  # SAM's image embedding is 1/16 of its input
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class PeerUnavailable(RuntimeError):
    """A peer's package is not installed (the message says which and how to get it)."""


def _segment_anything():
    try:
        import segment_anything.modeling as modeling
    except ImportError as error:
        raise PeerUnavailable(
            f"segment-anything is not installed ({error}); pip install 'seem_ros[peers]'"
        ) from error
    return modeling


def _sam_prompt_parts(modeling, image_size: int) -> tuple[nn.Module, nn.Module]:
    grid = image_size // PATCH
    prompt_encoder = modeling.PromptEncoder(
        embed_dim=PROMPT_DIM,
        image_embedding_size=(grid, grid),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )
    mask_decoder = modeling.MaskDecoder(
        num_multimask_outputs=3,
        transformer=modeling.TwoWayTransformer(
            depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048, num_heads=8
        ),
        transformer_dim=PROMPT_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return prompt_encoder, mask_decoder


class TinyVitEncoder(nn.Module):
    """timm's TinyViT-5M, its stride-16 stage, and SAM's neck (1x1 + 3x3 conv to 256 channels)."""

    def __init__(self, modeling) -> None:
        super().__init__()
        import timm

        self.body = timm.create_model(
            "tiny_vit_5m_224", pretrained=False, features_only=True, out_indices=(2,)
        )
        channels = self.body.feature_info.channels()[0]
        self.neck = nn.Sequential(
            nn.Conv2d(channels, PROMPT_DIM, 1, bias=False),
            modeling.common.LayerNorm2d(PROMPT_DIM),
            nn.Conv2d(PROMPT_DIM, PROMPT_DIM, 3, padding=1, bias=False),
            modeling.common.LayerNorm2d(PROMPT_DIM),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.neck(self.body(image)[0])


class PromptablePeer(nn.Module):
    """image encoder + SAM prompt encoder + SAM mask decoder, one click in, one mask out."""

    def __init__(
        self, image_encoder: nn.Module, prompt_encoder: nn.Module, mask_decoder: nn.Module
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), False)

    def forward(self, image: torch.Tensor, click: torch.Tensor) -> torch.Tensor:
        """image (1, 3, S, S) RGB 0..255, click (1, 1, 2) pixels -> (1, 1, S, S) mask logits."""
        embedding = self.image_encoder((image - self.mean) / self.std)
        sparse, dense = self.prompt_encoder(
            points=(click, torch.ones(1, 1, dtype=torch.int64)), boxes=None, masks=None
        )
        low_res, _ = self.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return F.interpolate(low_res, size=image.shape[-2:], mode="bilinear", align_corners=False)


def sam_vit_b(image_size: int = 1024) -> PromptablePeer:
    """SAM ViT-B (86M-parameter image encoder) with SAM's published hyper-parameters."""
    modeling = _segment_anything()
    encoder = modeling.ImageEncoderViT(
        depth=12,
        embed_dim=768,
        img_size=image_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=12,
        patch_size=PATCH,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=(2, 5, 8, 11),
        window_size=14,
        out_chans=PROMPT_DIM,
    )
    return PromptablePeer(encoder, *_sam_prompt_parts(modeling, image_size)).eval()


def mobile_sam_class(image_size: int = 1024) -> PromptablePeer:
    """TinyViT-5M features (stride 16) + SAM's neck, prompt encoder and mask decoder."""
    modeling = _segment_anything()
    try:
        encoder = TinyVitEncoder(modeling)
    except ImportError as error:
        raise PeerUnavailable(f"timm is not installed ({error})") from error
    return PromptablePeer(encoder, *_sam_prompt_parts(modeling, image_size)).eval()


@dataclass(frozen=True)
class Peer:
    name: str
    build: Callable[[int], PromptablePeer]


PEERS = (Peer("sam_vit_b", sam_vit_b), Peer("mobile_sam_class", mobile_sam_class))


def peer_call(model: PromptablePeer, image_size: int) -> Callable[[], torch.Tensor]:
    """A no-argument callable running the peer once on a fixed random image and click."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, image_size, image_size, generator=generator) * 255
    click = torch.tensor([[[image_size * 0.4, image_size * 0.6]]])

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(image, click)

    return call
