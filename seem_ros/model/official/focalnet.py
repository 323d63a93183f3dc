"""The FocalNet backbones of the official SEEM v1 checkpoints, in plain PyTorch.

Upstream has two FocalNet files and the two v1 checkpoints use different ones:
``seem_focalt_v1`` was trained with ``focal_dw`` (BACKBONE.NAME in its YAML) and
``seem_focall_v1`` with ``focal``. They share the focal modulation and the parameter names, and
differ in three places, all selected here by ``variant``:

* ``focal_dw`` adds a depthwise 3x3 conv residual (``dw1``, ``dw2``) before each of the two
  sub-layers of a block;
* with ``use_postln`` (both v1 configs), ``focal_dw`` normalises after the residual add
  (``x = norm(x + f(x))``) while ``focal`` normalises the branch before it
  (``x = x + norm(f(x))``);
* the overlapping 7x7 stem of ``use_conv_embed`` pads by 3 in ``focal_dw`` and by 2 in ``focal``
  (same output size for inputs divisible by 4, but a different sampling grid).

Inside this module activations are channels-last ``(B, H, W, C)``; they are permuted to
channels-first only around convolutions and for the returned maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

FocalVariant = Literal["focal_dw", "focal"]


def _conv_channels_last(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2-D conv to a (B, H, W, C) tensor, returning (B, H', W', C')."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Mlp(nn.Module):
    """Two-layer GELU MLP on the last dimension."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class FocalModulation(nn.Module):
    """Focal modulation: a query modulated by gated, hierarchically aggregated context.

    Args:
        dim: channels C.
        focal_level: number of stacked depthwise context convs L; there are L + 1 gates (the
            last one for the global, average-pooled context).
        focal_window: kernel size of the first context conv; each next one grows by
            ``focal_factor``.
        focal_factor: kernel growth per level.
        scaling_modulator: divide the aggregated context by L + 1.
        use_postln_in_modulation: LayerNorm (``ln``) on the modulated query before ``proj``.

    ``forward``: (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(
        self,
        *,
        dim: int,
        focal_level: int,
        focal_window: int,
        focal_factor: int = 2,
        scaling_modulator: bool = False,
        use_postln_in_modulation: bool = False,
    ) -> None:
        super().__init__()
        self.focal_level = focal_level
        self.scaling_modulator = scaling_modulator
        # one linear produces the query, the context and the L + 1 gates
        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.h = nn.Conv2d(dim, dim, kernel_size=1)
        self.proj = nn.Linear(dim, dim)
        self.focal_layers = nn.ModuleList()
        for level in range(focal_level):
            kernel = focal_window + focal_factor * level
            conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)
            # a Sequential with its GELU, as upstream, so the weight is named ``<level>.0``
            self.focal_layers.append(nn.Sequential(conv, nn.GELU()))
        self.ln = nn.LayerNorm(dim) if use_postln_in_modulation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[-1]
        projected = self.f(x).permute(0, 3, 1, 2)
        query, context, gates = torch.split(
            projected, (channels, channels, self.focal_level + 1), dim=1
        )
        aggregated = torch.zeros_like(query)
        for level, layer in enumerate(self.focal_layers):
            context = layer(context)
            aggregated = aggregated + context * gates[:, level : level + 1]
        global_context = F.gelu(context.mean(dim=(2, 3), keepdim=True))
        aggregated = aggregated + global_context * gates[:, self.focal_level :]
        if self.scaling_modulator:
            aggregated = aggregated / (self.focal_level + 1)
        out = (query * self.h(aggregated)).permute(0, 2, 3, 1)
        if self.ln is not None:
            out = self.ln(out)
        return self.proj(out)


class FocalModulationBlock(nn.Module):
    """One FocalNet block: focal modulation then MLP, each with a residual and LayerNorm.

    Args:
        dim: channels C.
        mlp_ratio: MLP hidden width as a multiple of C.
        focal_level, focal_window, scaling_modulator, use_postln_in_modulation: see
            :class:`FocalModulation`.
        variant: ``"focal_dw"`` or ``"focal"`` (see the module docstring).
        use_postln: normalise after each sub-layer instead of before.
        use_layerscale: learnable per-channel scales ``gamma_1``/``gamma_2`` on both branches.
        layerscale_value: their initial value (checkpoints overwrite it).

    ``forward``: (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(
        self,
        *,
        dim: int,
        mlp_ratio: float,
        focal_level: int,
        focal_window: int,
        variant: FocalVariant,
        use_postln: bool,
        use_postln_in_modulation: bool,
        scaling_modulator: bool,
        use_layerscale: bool,
        layerscale_value: float = 1e-4,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.use_postln = use_postln
        if use_layerscale:
            self.gamma_1 = nn.Parameter(torch.full((dim,), layerscale_value))
            self.gamma_2 = nn.Parameter(torch.full((dim,), layerscale_value))
        else:
            self.gamma_1 = self.gamma_2 = None
        depthwise = variant == "focal_dw"
        self.dw1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim) if depthwise else None
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = FocalModulation(
            dim=dim,
            focal_level=focal_level,
            focal_window=focal_window,
            scaling_modulator=scaling_modulator,
            use_postln_in_modulation=use_postln_in_modulation,
        )
        self.dw2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim) if depthwise else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))

    @staticmethod
    def _scale(gamma: nn.Parameter | None, x: torch.Tensor) -> torch.Tensor:
        return x if gamma is None else gamma * x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dw1 is not None:
            x = x + _conv_channels_last(self.dw1, x)
        if not self.use_postln:
            x = x + self._scale(self.gamma_1, self.modulation(self.norm1(x)))
            if self.dw2 is not None:
                x = x + _conv_channels_last(self.dw2, x)
            return x + self._scale(self.gamma_2, self.mlp(self.norm2(x)))
        if self.variant == "focal_dw":  # post-norm: norm(x + f(x))
            x = self.norm1(x + self._scale(self.gamma_1, self.modulation(x)))
            if self.dw2 is not None:
                x = x + _conv_channels_last(self.dw2, x)
            return self.norm2(x + self._scale(self.gamma_2, self.mlp(x)))
        # "focal": residual post-norm, x + norm(f(x))
        x = x + self._scale(self.gamma_1, self.norm1(self.modulation(x)))
        return x + self._scale(self.gamma_2, self.norm2(self.mlp(x)))


class PatchEmbed(nn.Module):
    """Strided conv embedding (the stem, or a stage's downsampling) with an optional LayerNorm.

    Args:
        in_chans: input channels.
        embed_dim: output channels.
        patch_size: stride of the non-overlapping embedding; inputs are zero-padded on the
            right/bottom to a multiple of it (as upstream, also with ``use_conv_embed``).
        use_conv_embed: overlapping convs instead: 7x7 stride 4 for the stem, 3x3 stride 2
            (padding 1) otherwise.
        stem_padding: padding of the overlapping 7x7 stem conv (3 in ``focal_dw``, 2 in
            ``focal``).
        is_stem: whether this is the stem.
        use_norm: LayerNorm (``norm``) over the output channels.

    ``forward``: (B, C, H, W) -> (B, H', W', embed_dim), channels-last.
    """

    def __init__(
        self,
        *,
        in_chans: int,
        embed_dim: int,
        patch_size: int,
        use_conv_embed: bool,
        stem_padding: int,
        is_stem: bool,
        use_norm: bool,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        if not use_conv_embed:
            kernel, stride, padding = patch_size, patch_size, 0
        elif is_stem:
            kernel, stride, padding = 7, 4, stem_padding
        else:
            kernel, stride, padding = 3, 2, 1
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(embed_dim) if use_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h = -height % self.patch_size
        pad_w = -width % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x).permute(0, 2, 3, 1)
        return x if self.norm is None else self.norm(x)


class FocalStage(nn.Module):
    """A stage: blocks at one resolution, then (but in the last stage) a 2x downsampling.

    ``forward``: (B, H, W, C) -> (stage output (B, H, W, C), next stage's input
    (B, H/2, W/2, 2C), or None in the last stage).
    """

    def __init__(
        self, *, blocks: Sequence[FocalModulationBlock], downsample: PatchEmbed | None
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        for block in self.blocks:
            x = block(x)
        if self.downsample is None:
            return x, None
        return x, self.downsample(x.permute(0, 3, 1, 2))


class FocalNet(nn.Module):
    """FocalNet backbone with the official SEEM v1 parameter names (``patch_embed``,
    ``layers.<i>.blocks.<j>``, ``layers.<i>.downsample``, ``norm<i>``).

    Args:
        variant: ``"focal_dw"`` (upstream ``focal_dw.py``, SEEM focalt v1) or ``"focal"``
            (upstream ``focal.py``, SEEM focall v1); see the module docstring.
        embed_dim: channels of the first stage; stage i has ``embed_dim * 2**i``.
        depths: blocks per stage.
        focal_levels: focal levels per stage.
        focal_windows: first focal kernel size per stage.
        mlp_ratio: MLP hidden width as a multiple of the stage's channels.
        patch_size: stem stride (and the padding multiple of the input).
        in_chans: image channels.
        patch_norm: LayerNorm after the stem.
        use_conv_embed: overlapping conv stem and downsampling (see :class:`PatchEmbed`).
        use_postln: post-norm blocks (see :class:`FocalModulationBlock`).
        use_postln_in_modulation: LayerNorm inside the modulation.
        scaling_modulator: divide the aggregated context by focal_level + 1.
        use_layerscale: per-channel branch scales ``gamma_1``/``gamma_2``.
        layerscale_value: their initial value.

    Stochastic depth and dropout are training-only and left out. Upstream's
    ``normalize_modulator`` does not exist in the v1.0 code; ``scaling_modulator`` is its
    equivalent there.

    ``forward``: a normalised image (B, 3, H, W), H and W multiples of 32 (others are padded as
    upstream pads them) -> ``{"res2": (B, C0, H/4, W/4), "res3": (B, C1, H/8, W/8),
    "res4": (B, C2, H/16, W/16), "res5": (B, C3, H/32, W/32)}``, each after its ``norm<i>``.
    """

    size_divisibility = 32

    def __init__(
        self,
        *,
        variant: FocalVariant = "focal_dw",
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        focal_levels: Sequence[int] = (2, 2, 2, 2),
        focal_windows: Sequence[int] = (9, 9, 9, 9),
        mlp_ratio: float = 4.0,
        patch_size: int = 4,
        in_chans: int = 3,
        patch_norm: bool = True,
        use_conv_embed: bool = False,
        use_postln: bool = False,
        use_postln_in_modulation: bool = False,
        scaling_modulator: bool = False,
        use_layerscale: bool = False,
        layerscale_value: float = 1e-4,
    ) -> None:
        super().__init__()
        if variant not in ("focal_dw", "focal"):
            raise ValueError(f"unknown FocalNet variant {variant!r}")
        if not len(depths) == len(focal_levels) == len(focal_windows):
            raise ValueError("depths, focal_levels and focal_windows need one entry per stage")
        stem_padding = 3 if variant == "focal_dw" else 2
        num_stages = len(depths)
        self._out_channels = tuple(embed_dim * 2**i for i in range(num_stages))
        self._out_strides = tuple(patch_size * 2**i for i in range(num_stages))
        self.patch_embed = PatchEmbed(
            in_chans=in_chans,
            embed_dim=embed_dim,
            patch_size=patch_size,
            use_conv_embed=use_conv_embed,
            stem_padding=stem_padding,
            is_stem=True,
            use_norm=patch_norm,
        )
        self.layers = nn.ModuleList()
        for index, dim in enumerate(self._out_channels):
            is_last = index == num_stages - 1
            downsample = None
            if not is_last:
                downsample = PatchEmbed(
                    in_chans=dim,
                    embed_dim=2 * dim,
                    patch_size=2,
                    use_conv_embed=use_conv_embed,
                    stem_padding=stem_padding,
                    is_stem=False,
                    use_norm=True,
                )
            blocks = [
                FocalModulationBlock(
                    dim=dim,
                    mlp_ratio=mlp_ratio,
                    focal_level=focal_levels[index],
                    focal_window=focal_windows[index],
                    variant=variant,
                    use_postln=use_postln,
                    use_postln_in_modulation=use_postln_in_modulation,
                    scaling_modulator=scaling_modulator,
                    use_layerscale=use_layerscale,
                    layerscale_value=layerscale_value,
                )
                for _ in range(depths[index])
            ]
            self.layers.append(FocalStage(blocks=blocks, downsample=downsample))
        for index, dim in enumerate(self._out_channels):
            self.add_module(f"norm{index}", nn.LayerNorm(dim))

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of res2, res3, ... ."""
        return self._out_channels

    @property
    def out_strides(self) -> tuple[int, ...]:
        """Strides of res2, res3, ... relative to the input."""
        return self._out_strides

    @property
    def out_features(self) -> tuple[str, ...]:
        return tuple(f"res{index + 2}" for index in range(len(self._out_channels)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"FocalNet expects (B, C, H, W), got {tuple(x.shape)}")
        x = self.patch_embed(x)
        outputs: dict[str, torch.Tensor] = {}
        for index, stage in enumerate(self.layers):
            features, x = stage(x)
            norm = getattr(self, f"norm{index}")
            outputs[f"res{index + 2}"] = norm(features).permute(0, 3, 1, 2).contiguous()
        return outputs


@dataclass(frozen=True)
class FocalNetConfig:
    """FocalNet hyper-parameters (``MODEL.BACKBONE.FOCAL`` of the upstream YAMLs)."""

    variant: FocalVariant
    embed_dim: int
    depths: tuple[int, ...]
    focal_levels: tuple[int, ...]
    focal_windows: tuple[int, ...]
    mlp_ratio: float = 4.0
    patch_size: int = 4
    patch_norm: bool = True
    use_conv_embed: bool = True
    use_postln: bool = True
    use_postln_in_modulation: bool = False
    scaling_modulator: bool = True
    use_layerscale: bool = True

    def build(self) -> FocalNet:
        return FocalNet(**{field.name: getattr(self, field.name) for field in fields(self)})


FOCALNET_CONFIGS: dict[str, FocalNetConfig] = {
    # configs/seem/focalt_unicl_lang_v1.yaml (BACKBONE.NAME: focal_dw)
    "seem_focalt_v1": FocalNetConfig(
        variant="focal_dw",
        embed_dim=96,
        depths=(2, 2, 6, 2),
        focal_levels=(3, 3, 3, 3),
        focal_windows=(3, 3, 3, 3),
    ),
    # configs/seem/focall_unicl_lang_v1.yaml (BACKBONE.NAME: focal)
    "seem_focall_v1": FocalNetConfig(
        variant="focal",
        embed_dim=192,
        depths=(2, 2, 18, 2),
        focal_levels=(4, 4, 4, 4),
        focal_windows=(3, 3, 3, 3),
    ),
}
"""The two FocalNet SEEM v1 backbones, keyed by our official config names."""


def build_focalnet(config: str) -> FocalNet:
    """The FocalNet of an official config name (``seem_focalt_v1`` or ``seem_focall_v1``)."""
    if config not in FOCALNET_CONFIGS:
        raise ValueError(f"no FocalNet for {config!r}; known: {sorted(FOCALNET_CONFIGS)}")
    return FOCALNET_CONFIGS[config].build()
