"""Image backbones returning features at strides 4, 8, 16 and 32."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import BackboneConfig
from .weights import load_state_dict_file

STRIDES = (4, 8, 16, 32)


class ConvBnAct(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, *, stride: int = 1, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (ResNet basic block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(channels, channels)
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.conv1(x)))


class ConvBackbone(nn.Module):
    """A small residual conv net: a stride-4 stem, then one stage per stride 4/8/16/32.

    Args:
        channels: output channels of the four stages.
        blocks: residual blocks per stage.
    """

    def __init__(self, *, channels: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        super().__init__()
        if len(channels) != 4 or len(blocks) != 4:
            raise ValueError("ConvBackbone needs 4 stage channels and 4 block counts")
        self.stem = nn.Sequential(
            ConvBnAct(3, channels[0] // 2, stride=2),
            ConvBnAct(channels[0] // 2, channels[0], stride=2),
        )
        stages = []
        in_ch = channels[0]
        for index, (out_ch, count) in enumerate(zip(channels, blocks)):
            down = ConvBnAct(in_ch, out_ch, stride=1 if index == 0 else 2)
            stages.append(nn.Sequential(down, *[ResidualBlock(out_ch) for _ in range(count)]))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(channels)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, 3, H, W) normalised -> 4 maps (B, C_i, H/s, W/s) for s in 4, 8, 16, 32."""
        x = self.stem(image)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class TimmBackbone(nn.Module):
    """Any ``timm`` model that supports ``features_only``, reduced to strides 4/8/16/32."""

    def __init__(self, name: str) -> None:
        super().__init__()
        import timm

        probe = timm.create_model(name, pretrained=False, features_only=True)
        reductions = list(probe.feature_info.reduction())
        try:
            indices = tuple(reductions.index(s) for s in STRIDES)
        except ValueError as error:
            raise ValueError(
                f"timm model {name!r} has feature strides {reductions}; need {list(STRIDES)}"
            ) from error
        self.body = timm.create_model(
            name, pretrained=False, features_only=True, out_indices=indices
        )
        self.out_channels = tuple(self.body.feature_info.channels())

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(image))


def load_timm_weights(body: nn.Module, path: Path) -> None:
    """Load a timm classification checkpoint (safetensors or torch) into a features_only body."""
    state = load_state_dict_file(path)
    own = body.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} backbone tensors missing or mis-shaped, e.g. {missing[:3]}"
        )
    body.load_state_dict(usable, strict=False)


def build_backbone(config: BackboneConfig) -> nn.Module:
    if config.name == "conv":
        return ConvBackbone(channels=tuple(config.channels), blocks=tuple(config.blocks))
    return TimmBackbone(config.name)
