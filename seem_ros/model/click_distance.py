"""Click distances: how far each pixel is from the object's positive and negative clicks.

Interactive-segmentation networks since RITM feed the clicks to the network as distance maps.
SEEM feeds them only as tokens (features sampled at the click), and a token cannot say "not
that one, the one touching it" between two same-coloured objects: their features are alike,
so a negative click on the merged neighbour barely moves the mask (on val, 18 of 150 objects
never reached IoU 0.90 in 20 clicks with the network alone, 11 of them merged with a
look-alike). This head gives the object's final mask logits a per-pixel correction computed
from the pixel's distance to the nearest positive click, its distance to the nearest negative
click, their log-ratio and the logit itself, through a small MLP. It is learned end to end with
the rest of the decoder and exported with it (plain arithmetic, static shapes).

Only clicks count (point prompts; a scribble, box or mask is a region, not a site). The last
layer starts at zero, so weights trained without this head start from exactly their own masks.

The MLP runs at half the mask grid (the logits average-pooled) and its correction is upsampled
bilinearly: it is per-pixel arithmetic on per-object maps, so its cost is memory traffic that
grows with the objects decoded (at the full grid, 50 clicked objects took 44 ms to decode on
ONNX Runtime against 20 ms without the head), and a correction by distance is smooth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 6
"""logit, distance to the nearest positive click, to the nearest negative click, the log of
their ratio, and whether there is any positive / any negative click."""
NO_CLICK_DISTANCE = 2.0
"""The distance (in short sides of the mask grid) a pixel gets when the object has no click of
that polarity: beyond any pixel of the frame (the long side is at most twice the short)."""
OUTPUT_SCALE = 50.0
"""The MLP's output is multiplied by this, so that fine-tuning at a small learning rate (Adam
moves each weight by about the learning rate per step) can still reach corrections of the size
of mask logits: with 10, 1,000 steps at 6e-5 had learned the right sign (negative near negative
clicks) but only about 0.45 in size, against merged neighbours' logits of several units."""


class ClickDistance(nn.Module):
    """Args:
    hidden: width of the per-pixel MLP.
    """

    def __init__(self, *, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(FEATURES, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(
        self,
        logits: torch.Tensor,
        coords: torch.Tensor,
        sample_valid: torch.Tensor,
        kind: torch.Tensor,
        positive: torch.Tensor,
        visual_valid: torch.Tensor,
    ) -> torch.Tensor:
        """Corrections for the objects' mask logits.

        Args:
            logits: (B, G, h, w) the objects' mask logits (h and w even: the mask grid).
            coords: (B, G, P, S, 2) visual prompt samples, (x, y) in [0, 1] of the model input;
                a point prompt's click is its first sample.
            sample_valid, kind, positive, visual_valid: as in ``PromptTensors``.
        Returns:
            (B, G, h, w) to add to ``logits``.
        """
        full_size = logits.shape[-2:]
        logits = F.avg_pool2d(logits, 2)
        height, width = logits.shape[-2:]
        short = float(min(height, width))
        is_click = kind[..., 0] * visual_valid * sample_valid[..., 0]  # B, G, P
        sites = coords[..., 0, :]  # B, G, P, 2
        rows = (torch.arange(height, device=logits.device, dtype=logits.dtype) + 0.5) / height
        cols = (torch.arange(width, device=logits.device, dtype=logits.dtype) + 0.5) / width
        dy = (rows - sites[..., 1:2]) * (height / short)  # B, G, P, h
        dx = (cols - sites[..., 0:1]) * (width / short)  # B, G, P, w
        squared = dy.unsqueeze(-1) ** 2 + dx.unsqueeze(-2) ** 2  # B, G, P, h, w
        far = NO_CLICK_DISTANCE**2

        def nearest(selected: torch.Tensor) -> torch.Tensor:
            """(B, G, h, w) distance to the nearest selected click (NO_CLICK_DISTANCE if none)."""
            blocked = (1.0 - selected)[..., None, None] * far
            return torch.clamp(squared + blocked, max=far).amin(dim=2).sqrt()

        positive_clicks = is_click * positive
        negative_clicks = is_click * (1.0 - positive)
        to_positive = nearest(positive_clicks)
        to_negative = nearest(negative_clicks)
        has_positive = positive_clicks.amax(dim=2)[..., None, None].expand_as(to_positive)
        has_negative = negative_clicks.amax(dim=2)[..., None, None].expand_as(to_positive)
        ratio = torch.log((to_positive + 0.01) / (to_negative + 0.01)) * has_positive * has_negative
        features = torch.stack(
            [
                logits.clamp(-10.0, 10.0) / 10.0,
                to_positive,
                to_negative,
                ratio,
                has_positive,
                has_negative,
            ],
            dim=-1,
        )
        correction = self.mlp(features).squeeze(-1) * OUTPUT_SCALE
        return F.interpolate(correction, size=full_size, mode="bilinear", align_corners=False)
