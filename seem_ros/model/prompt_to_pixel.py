"""Prompt-to-pixel attention: each object's prompt tokens reshape that object's own mask.

SEEM's masks are ``mask_embed(query) . pixel_features``: a click changes the object's query,
never the pixel features, so "not that one, the one touching it" between two same-coloured
objects has no way to be said. SAM solves this with two-way attention (image tokens attend
to prompt tokens). This is the cheap, per-object form of that direction: every pixel attends
to the object's final group tokens (memory, clicks/boxes/scribbles, text, reference) plus a
learned "nothing here" key, and the attended values are read out along the object's mask
embedding. So each pixel's logit gets a correction that depends on which prompt it resembles
and is near (a negative click suppresses the pixels that look like it and sit close to it).

The read-out is folded so the per-object cost is one ``pixels x tokens`` attention, with no
per-object ``pixels x D`` projection::

    e . out(sum_t a_t v_t) = sum_t a_t ((W_out^T e) . v_t) + e . b_out

``out`` starts at zero, so training starts from the masks without any correction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import BLOCKED, head_width


class PromptToPixel(nn.Module):
    """Args:
    dim: token / pixel feature width D.
    num_heads: attention heads (each a different "which prompt is this pixel like" view).
    """

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_width(dim, num_heads)
        self.pixel_norm = nn.LayerNorm(dim)
        self.pixel_query = nn.Linear(dim, dim)
        self.pixel_position = nn.Linear(dim, dim)
        self.token_norm = nn.LayerNorm(dim)
        self.token_key = nn.Linear(dim, dim)
        self.token_value = nn.Linear(dim, dim)
        self.null_key = nn.Parameter(torch.randn(dim) * 0.02)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        mask_embeds: torch.Tensor,
        pixel_features: torch.Tensor,
        pixel_positions: torch.Tensor,
        group_tokens: torch.Tensor,
        group_valid: torch.Tensor,
    ) -> torch.Tensor:
        """Mask-logit corrections for every prompted object.

        Args:
            mask_embeds: (B, G, D) each object's mask embedding (what its logits dot with).
            pixel_features: (B, D, h, w) the mask features.
            pixel_positions: (D, h, w) sine encoding of the pixel centres.
            group_tokens: (B, G, T, D) each object's tokens after the last decoder layer.
            group_valid: (B, G, T) 1.0 for tokens that exist, 0.0 for padding.
        Returns:
            (B, G, h, w) to add to the objects' mask logits.
        """
        batch, groups, length, dim = group_tokens.shape
        height, width = pixel_features.shape[-2:]
        heads, head_dim = self.num_heads, self.head_dim
        pixels = self.pixel_norm(pixel_features.flatten(2).transpose(1, 2))  # B, hw, D
        query = self.pixel_query(pixels) + self.pixel_position(
            pixel_positions.flatten(1).transpose(0, 1)
        )
        query = query.reshape(batch, height * width, heads, head_dim).transpose(1, 2)
        tokens = self.token_norm(group_tokens)
        keys = torch.cat(
            [self.token_key(tokens), self.null_key.expand(batch, groups, 1, dim)], dim=2
        )  # B, G, T+1, D
        # every object's keys side by side: one (hw x dh) @ (dh x G(T+1)) product per head,
        # rather than a broadcast batch of G small ones (which copies the queries G times)
        keys = keys.reshape(batch, groups * (length + 1), heads, head_dim).permute(0, 2, 3, 1)
        scores = (query * head_dim**-0.5) @ keys  # B, H, hw, G(T+1)
        scores = scores.reshape(batch, heads, height * width, groups, length + 1)
        valid = torch.cat(
            [group_valid, torch.ones_like(group_valid[..., :1])], dim=2
        )  # the null key is always there
        scores = scores + ((1.0 - valid) * BLOCKED).reshape(batch, 1, 1, groups, length + 1)
        weights = scores.softmax(dim=-1)
        readout = mask_embeds @ self.out.weight  # B, G, D: W_out^T e
        values = self.token_value(tokens).reshape(batch, groups, length, heads, head_dim)
        per_token = (values * readout.reshape(batch, groups, 1, heads, head_dim)).sum(-1)
        per_token = F.pad(per_token, (0, 0, 0, 1))  # B, G, T+1, H; the null token's value is 0
        per_token = per_token.permute(0, 3, 1, 2).unsqueeze(2)  # B, H, 1, G, T+1
        correction = (weights * per_token).sum(dim=(1, 4))  # B, hw, G
        bias = (mask_embeds * self.out.bias).sum(-1).unsqueeze(1)  # B, 1, G
        return (correction + bias).transpose(1, 2).reshape(batch, groups, height, width)
