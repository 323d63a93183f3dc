"""detectron2.modeling stand-ins: the Backbone base class and registries."""

from __future__ import annotations

from torch import nn

from detectron2.layers import ShapeSpec

__all__ = ["BACKBONE_REGISTRY", "SEM_SEG_HEADS_REGISTRY", "Backbone", "ShapeSpec"]


class Registry(dict):
    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def register(self, obj=None):
        def deco(o):
            self[o.__name__] = o
            return o

        return deco(obj) if obj is not None else deco

    def get(self, name):
        return self[name]


BACKBONE_REGISTRY = Registry("BACKBONE")
SEM_SEG_HEADS_REGISTRY = Registry("SEM_SEG_HEADS")


class Backbone(nn.Module):
    """Abstract base of detectron2 backbones (forward returns a dict of named feature maps)."""

    def __init__(self):
        super().__init__()

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    @property
    def size_divisibility(self) -> int:
        return 0

    @property
    def padding_constraints(self) -> dict:
        return {}

    def output_shape(self):
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }
