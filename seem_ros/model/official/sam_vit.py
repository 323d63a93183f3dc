"""The SAM ViT backbones of the official SEEM v1 checkpoints (upstream ``backbone/vit.py``).

``seem_samvitb_v1`` and ``seem_samvitl_v1`` use SAM's image encoder (ViT-B / ViT-L, patch 16,
pretrained at 1024x1024): a plain ViT with decomposed relative positions, 14x14 window
attention in most blocks and global attention in four, followed not by SAM's own neck but by a
"simple FPN" that turns the single 1/16 map into res2..res5 (transposed convs up, a strided conv
down), as in ViTDet. Written in plain PyTorch with the upstream parameter names.

Input sizes, as upstream: the absolute position embedding is added as it is (no interpolation),
so the input must be ``img_size x img_size`` (1024x1024; upstream pads every image to multiples
of its ``SIZE_DIVISIBILITY: 1024`` after resizing its longest side to at most 1024). Windowed
blocks pad the token grid with zeros (after ``norm1``) to multiples of the window and let the
padding tokens take part in the attention, as upstream does; relative-position tables whose
length does not fit the grid are linearly resized, as upstream's ``get_rel_pos``.

Inside the ViT activations are channels-last ``(B, H, W, C)``; the neck is channels-first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

SAM_LAYER_NORM_EPS = 1e-6


def relative_position_table(rel_pos: torch.Tensor, size: int) -> torch.Tensor:
    """A relative-position table (L, d) -> (size, size, d): row i, column j holds the
    embedding of offset ``i - j`` (query i, key j, equal query and key lengths). The table is
    linearly resized first when L != 2 * size - 1 (upstream ``get_rel_pos``)."""
    length = 2 * size - 1
    if rel_pos.shape[0] != length:
        channels_first = rel_pos.transpose(0, 1).unsqueeze(0)  # (1, d, L)
        resized = F.interpolate(channels_first, size=length, mode="linear")
        rel_pos = resized[0].transpose(0, 1)
    offsets = torch.arange(size, device=rel_pos.device)
    index = offsets[:, None] - offsets[None, :] + (size - 1)
    return rel_pos[index]


class RelPosAttention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) grid with decomposed relative positions
    (MViTv2): the logit of query (y, x) and key (y', x') gains ``q . Rh[y - y'] + q . Rw[x - x']``
    with the unscaled query.

    Args:
        dim: channels C; num_heads: heads (divide C).
        grid: the (height, width) its ``rel_pos_h`` / ``rel_pos_w`` tables are sized for
            (2 * side - 1 rows each): the window, or the whole token grid for global blocks.
    """

    def __init__(self, *, dim: int, num_heads: int, grid: tuple[int, int]) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        batch, height, width, channels = x.shape
        heads = self.num_heads
        # (B, HW, 3, heads, d) -> three (B, heads, HW, d)
        qkv = self.qkv(x).reshape(batch, height * width, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        grid_q = q.reshape(batch, heads, height, width, -1)
        table_h = relative_position_table(self.rel_pos_h, height)  # (H, H, d)
        table_w = relative_position_table(self.rel_pos_w, width)  # (W, W, d)
        bias_h = torch.einsum("bnhwd,hkd->bnhwk", grid_q, table_h)  # (B, heads, H, W, H)
        bias_w = torch.einsum("bnhwd,wkd->bnhwk", grid_q, table_w)  # (B, heads, H, W, W)
        logits = ((q * self.scale) @ k.transpose(-2, -1)).reshape(
            batch, heads, height, width, height, width
        )
        logits = logits + bias_h[..., :, None] + bias_w[..., None, :]
        logits = logits.reshape(batch, heads, height * width, height * width)
        out = logits.softmax(dim=-1) @ v  # (B, heads, HW, d)
        out = out.transpose(1, 2).reshape(batch, height, width, channels)
        return self.proj(out)


class MLPBlock(nn.Module):
    """``lin2(gelu(lin1(x)))`` on the last dimension (SAM's ``MLPBlock``)."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.gelu(self.lin1(x)))


def to_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nH * nW, window, window, C), the grid zero-padded at the bottom and
    right to multiples of ``window``; windows in raster order per image."""
    batch, height, width, channels = x.shape
    pad_h = (window - height % window) % window
    pad_w = (window - width % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    rows, cols = (height + pad_h) // window, (width + pad_w) // window
    x = x.reshape(batch, rows, window, cols, window, channels).transpose(2, 3)
    return x.reshape(batch * rows * cols, window, window, channels)


def from_windows(windows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`to_windows`: (B * nH * nW, w, w, C) -> (B, H, W, C), padding cut."""
    window, channels = windows.shape[1], windows.shape[-1]
    rows, cols = (height + window - 1) // window, (width + window - 1) // window
    batch = windows.shape[0] // (rows * cols)
    x = windows.reshape(batch, rows, cols, window, window, channels).transpose(2, 3)
    x = x.reshape(batch, rows * window, cols * window, channels)
    return x[:, :height, :width, :]


class ViTBlock(nn.Module):
    """Pre-norm ViT block: ``x + attn(norm1(x))`` (windowed or global), then
    ``x + mlp(norm2(x))``. No layer scale, no drop path (inference).

    Args:
        dim, num_heads, mlp_ratio: width, heads, MLP hidden width / width.
        window_size: window side for windowed attention; 0 for global attention.
        grid: the token grid at the pretraining size (sizes a global block's tables).
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        window_size: int,
        grid: tuple[int, int],
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=SAM_LAYER_NORM_EPS)
        self.attn = RelPosAttention(
            dim=dim,
            num_heads=num_heads,
            grid=(window_size, window_size) if window_size > 0 else grid,
        )
        self.norm2 = nn.LayerNorm(dim, eps=SAM_LAYER_NORM_EPS)
        self.mlp = MLPBlock(dim=dim, hidden_dim=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        y = self.norm1(x)
        if self.window_size > 0:
            height, width = y.shape[1:3]
            y = from_windows(self.attn(to_windows(y, self.window_size)), height, width)
        else:
            y = self.attn(y)
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (held as ``proj``): (B, 3, H, W) -> (B, H/p, W/p, C)."""

    def __init__(self, *, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class SimpleFPN(nn.Module):
    """The SEEM SAM neck: four branches from the (B, C, H/16, W/16) ViT map, each a
    ``nn.Sequential`` with the upstream indices (GroupNorm with one group = LayerNorm over
    channels and space; exact GELU):

    * ``down_4``: ConvT 2x2/2, GN, GELU, ConvT 2x2/2, GN, 1x1 conv, GN, GELU -> stride 4;
    * ``down_8``: ConvT 2x2/2, GN, 1x1 conv, GN, GELU -> stride 8;
    * ``down_16``: 1x1 conv, GN, GELU -> stride 16;
    * ``down_32``: conv 2x2/2, GN, 1x1 conv, GN, GELU -> stride 32.

    Args:
        in_dim: the ViT width C; out_dims: channels of res2..res5.
    """

    def __init__(self, *, in_dim: int, out_dims: Sequence[int]) -> None:
        super().__init__()
        dim_4 = max(out_dims[0] * 2, in_dim // 2)
        dim_8 = max(out_dims[1], in_dim // 2)
        dim_32 = max(out_dims[3], in_dim * 2)
        self.down_4 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, dim_4, 2, stride=2),
            nn.GroupNorm(1, dim_4),
            nn.GELU(),
            nn.ConvTranspose2d(dim_4, dim_4 // 2, 2, stride=2),
            nn.GroupNorm(1, dim_4 // 2),
            nn.Conv2d(dim_4 // 2, out_dims[0], 1),
            nn.GroupNorm(1, out_dims[0]),
            nn.GELU(),
        )
        self.down_8 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, dim_8, 2, stride=2),
            nn.GroupNorm(1, dim_8),
            nn.Conv2d(dim_8, out_dims[1], 1),
            nn.GroupNorm(1, out_dims[1]),
            nn.GELU(),
        )
        self.down_16 = nn.Sequential(
            nn.Conv2d(in_dim, out_dims[2], 1),
            nn.GroupNorm(1, out_dims[2]),
            nn.GELU(),
        )
        self.down_32 = nn.Sequential(
            nn.Conv2d(in_dim, dim_32, 2, stride=2),
            nn.GroupNorm(1, dim_32),
            nn.Conv2d(dim_32, out_dims[3], 1),
            nn.GroupNorm(1, out_dims[3]),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C, h, w) -> res2 (B, out_dims[0], 4h, 4w), res3 (.., 2h, 2w), res4 (.., h, w),
        res5 (.., h/2, w/2)."""
        return {
            "res2": self.down_4(x),
            "res3": self.down_8(x),
            "res4": self.down_16(x),
            "res5": self.down_32(x),
        }


class SamViT(nn.Module):
    """SAM's ViT image encoder with SEEM's simple-FPN neck and the official SEEM v1 parameter
    names (``patch_embed.proj``, ``pos_embed``, ``blocks.<i>.{norm1,attn,norm2,mlp}``,
    ``neck.down_{4,8,16,32}``).

    Args:
        embed_dim, depth, num_heads: ViT width, blocks and heads (B: 768/12/12, L: 1024/24/16).
        global_attn_indexes: blocks with global attention; the others use windows.
        window_size: window side of the windowed blocks (14).
        img_size: the pretraining input side (1024); sizes ``pos_embed`` and the global blocks'
            relative-position tables, and is the only input size accepted (see the module
            docstring).
        patch_size: patch side (16).
        mlp_ratio: MLP hidden width / width.
        in_chans: image channels.
        out_dims: channels of res2..res5 (upstream ``neck_out_dims``, (128, 256, 512, 1024)).

    ``forward``: a normalised image (B, 3, img_size, img_size) -> ``{"res2": (B, 128, H/4,
    W/4), "res3": (B, 256, H/8, W/8), "res4": (B, 512, H/16, W/16), "res5": (B, 1024, H/32,
    W/32)}`` (channels from ``out_dims``).
    """

    def __init__(
        self,
        *,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
        window_size: int = 14,
        img_size: int = 1024,
        patch_size: int = 16,
        mlp_ratio: float = 4.0,
        in_chans: int = 3,
        out_dims: Sequence[int] = (128, 256, 512, 1024),
    ) -> None:
        super().__init__()
        if len(out_dims) != 4:
            raise ValueError(f"out_dims needs the channels of res2..res5, got {tuple(out_dims)}")
        self.img_size = img_size
        self.patch_size = patch_size
        grid = (img_size // patch_size, img_size // patch_size)
        self._out_channels = tuple(out_dims)
        self.patch_embed = PatchEmbed(in_chans=in_chans, embed_dim=embed_dim, patch_size=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, *grid, embed_dim))
        self.blocks = nn.ModuleList(
            ViTBlock(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                window_size=0 if index in global_attn_indexes else window_size,
                grid=grid,
            )
            for index in range(depth)
        )
        self.neck = SimpleFPN(in_dim=embed_dim, out_dims=out_dims)

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of res2, res3, res4, res5."""
        return self._out_channels

    @property
    def out_strides(self) -> tuple[int, ...]:
        """Strides of res2, res3, res4, res5 relative to the input."""
        return (4, 8, 16, 32)

    @property
    def out_features(self) -> tuple[str, ...]:
        return ("res2", "res3", "res4", "res5")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"SamViT expects (B, C, H, W), got {tuple(x.shape)}")
        tokens = self.patch_embed(x)
        if tuple(tokens.shape[1:3]) != tuple(self.pos_embed.shape[1:3]):
            raise ValueError(
                f"SamViT takes {self.img_size}x{self.img_size} inputs, as upstream (its position "
                f"embedding is not interpolated; pad images to {self.img_size}x{self.img_size}); "
                f"got {tuple(x.shape[-2:])}"
            )
        tokens = tokens + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        return self.neck(tokens.permute(0, 3, 1, 2))


@dataclass(frozen=True)
class SamViTConfig:
    """SAM ViT hyper-parameters (upstream ``D2ViT``, selected by ``BACKBONE.VIT.SIZE``)."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    img_size: int = 1024
    patch_size: int = 16
    mlp_ratio: float = 4.0
    out_dims: tuple[int, ...] = (128, 256, 512, 1024)

    def build(self) -> SamViT:
        return SamViT(**{field.name: getattr(self, field.name) for field in fields(self)})


SAM_VIT_CONFIGS: dict[str, SamViTConfig] = {
    # configs/seem/samvitb_unicl_lang_v1.yaml (BACKBONE.VIT.SIZE: base)
    "seem_samvitb_v1": SamViTConfig(
        embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)
    ),
    # configs/seem/samvitl_unicl_lang_v1.yaml (BACKBONE.VIT.SIZE: large)
    "seem_samvitl_v1": SamViTConfig(
        embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)
    ),
}
"""The two SAM ViT SEEM v1 backbones, keyed by our official config names."""


def build_sam_vit(config: str) -> SamViT:
    """The SAM ViT of an official config name (``seem_samvitb_v1`` or ``seem_samvitl_v1``)."""
    if config not in SAM_VIT_CONFIGS:
        raise ValueError(f"no SAM ViT for {config!r}; known: {sorted(SAM_VIT_CONFIGS)}")
    return SAM_VIT_CONFIGS[config].build()
