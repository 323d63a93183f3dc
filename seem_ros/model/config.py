"""Model sizes are configuration, not code: a YAML file per size, one dataclass tree to hold it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@dataclass
class BackboneConfig:
    """``name``: ``"conv"`` (built-in conv net) or any ``timm`` model with ``features_only``."""

    name: str = "conv"
    channels: tuple[int, int, int, int] = (32, 64, 128, 192)
    blocks: tuple[int, int, int, int] = (1, 1, 2, 1)
    pretrained_path: str | None = None


@dataclass
class TextConfig:
    """An open_clip text transformer (our own small size, or a pretrained tower's size)."""

    context_length: int = 16
    vocab_size: int = 49408
    width: int = 128
    heads: int = 2
    layers: int = 2
    embed_dim: int = 64
    pretrained_path: str | None = None


@dataclass
class DecoderConfig:
    hidden_dim: int = 64
    num_queries: int = 16
    num_layers: int = 3
    num_heads: int = 4
    ffn_dim: int = 256
    memory_tokens: int = 2
    max_visual_prompts: int = 16
    samples_per_prompt: int = 16
    # add a learned projection of the image positions to cross-attention *values*, so tokens
    # carry where they looked, not only what they saw ("the leftmost ring" needs positions to
    # compare); off in configs that predate it, whose weights then load unchanged
    position_in_values: bool = False
    # add a learned projection of the pixel positions to the mask features the output queries
    # are matched against, so a mask can say "this one, here" and not only "things that look
    # like this" (look-alike twins, "the leftmost ring"); off in configs that predate it
    position_in_mask_features: bool = False
    # heads of the prompt-to-pixel attention (model/prompt_to_pixel.py) that lets an object's
    # clicks and memory reshape its mask, not only its query; 0 = off (configs that predate it)
    prompt_to_pixel_heads: int = 0
    # restrict each layer's masked cross-attention with masks predicted at half the mask
    # resolution (the mean logit of each 2x2 cell instead of any pixel): the finest attention
    # level is 1/8 of the input, so the full-resolution intermediate masks were mostly pooled
    # away, and computing them was a per-object cost; off in configs that predate it
    coarse_attention_masks: bool = False


@dataclass
class ModelConfig:
    name: str = "tiny"
    image_size: int = 256
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    text: TextConfig = field(default_factory=TextConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        sections = {
            "backbone": BackboneConfig,
            "text": TextConfig,
            "decoder": DecoderConfig,
        }
        for key, section_cls in sections.items():
            if key in data:
                data[key] = _section(section_cls, data[key], key)
        for key in ("pixel_mean", "pixel_std"):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        return cls(**data)


def _section(section_cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(section_cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown keys in model config section {where!r}: {sorted(unknown)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return section_cls(**converted)


def available_configs() -> list[str]:
    folder = resources.files("seem_ros.model") / "configs"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Load a named built-in config (``tiny``, ``base``, ...) or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text()
    else:
        resource = resources.files("seem_ros.model") / "configs" / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise ValueError(
                f"no model config {name_or_path!r}; built-in configs: {available_configs()}"
            )
        text = resource.read_text()
    return ModelConfig.from_dict(yaml.safe_load(text))
