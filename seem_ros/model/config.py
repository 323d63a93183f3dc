"""Model sizes are configuration, not code: a YAML file per size, one dataclass tree to hold it."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .official.config import OfficialConfig

FAMILIES = ("seem_ros", "official_v1")

LOG = logging.getLogger(__name__)


@dataclass
class BackboneConfig:
    """``name``: ``"conv"`` (built-in conv net) or any ``timm`` model with ``features_only``.

    A config is the architecture only: a saved model loads from its weights and card alone.
    Pretrained weights to *start training from* are the training config's
    ``pretrained_backbone``.
    """

    name: str = "conv"
    channels: tuple[int, int, int, int] = (32, 64, 128, 192)
    blocks: tuple[int, int, int, int] = (1, 1, 2, 1)


@dataclass
class TextConfig:
    """The text tower. ``tower: seem_ros``: an open_clip text transformer (our own small size,
    or a pretrained tower's size; pretrained weights to start training from are the training
    config's ``pretrained_text``). ``tower: official_v1``: the official SEEM language encoder
    (CLIP tokenizer, ``embed_dim`` = its projection), which a student distilled from an
    official teacher carries so that it keeps the teacher's text space.
    """

    tower: str = "seem_ros"
    context_length: int = 16
    vocab_size: int = 49408
    width: int = 128
    heads: int = 2
    layers: int = 2
    embed_dim: int = 64

    def __post_init__(self) -> None:
        if self.tower not in TEXT_TOWERS:
            raise ValueError(f"unknown text tower {self.tower!r}; known: {TEXT_TOWERS}")


TEXT_TOWERS = ("seem_ros", "official_v1")


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
    # heads of the prompt-to-pixel attention (model/prompt_to_pixel.py) that lets an object's
    # clicks and memory reshape its mask, not only its query
    prompt_to_pixel_heads: int = 2
    # width of the click-distance head (model/click_distance.py) that corrects an object's mask
    # by its pixels' distances to its positive and negative clicks; 0: none (weights before it)
    click_distance_hidden: int = 0
    # width of the query-grounding head (model/query_grounding.py) that picks the generic
    # query answering a referring phrase; 0: none (the hand rule of seem_ros/phrase_grounding.py)
    grounding_hidden: int = 0
    # dilated residual blocks on the pixel decoder's stride-8 map (model/pixel_decoder.py);
    # 0: none (weights before them)
    pixel_context_blocks: int = 0

    def __post_init__(self) -> None:
        if self.prompt_to_pixel_heads < 1:
            raise ValueError(
                f"decoder.prompt_to_pixel_heads must be at least 1, got "
                f"{self.prompt_to_pixel_heads} (weights without prompt-to-pixel attention "
                "predate this decoder and no longer load)"
            )
        if self.click_distance_hidden < 0:
            raise ValueError(
                f"decoder.click_distance_hidden must be 0 (none) or more, got "
                f"{self.click_distance_hidden}"
            )
        if self.grounding_hidden < 0:
            raise ValueError(
                f"decoder.grounding_hidden must be 0 (none) or more, got {self.grounding_hidden}"
            )
        if self.pixel_context_blocks < 0:
            raise ValueError(
                f"decoder.pixel_context_blocks must be 0 (none) or more, got "
                f"{self.pixel_context_blocks}"
            )


RETIRED_DECODER_KEYS = ("position_in_values", "position_in_mask_features", "coarse_attention_masks")
"""Switches of parts the decoder now always has. Cards and YAML files written before may still
name them: ``true`` is accepted (and dropped), ``false`` means weights without the part, which
no longer load."""


@dataclass
class ModelConfig:
    name: str = "tiny"
    image_size: int = 256
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    text: TextConfig = field(default_factory=TextConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    # "seem_ros": our own architecture (the sections above); "official_v1": the official SEEM
    # v1 architecture, sized by the ``official`` section (then ``image_size`` is the short side)
    family: str = "seem_ros"
    official: OfficialConfig | None = None

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
        if data.get("official") is not None:
            data["official"] = OfficialConfig.from_dict(data["official"])
        if data.get("family", "seem_ros") not in FAMILIES:
            raise ValueError(f"unknown model family {data['family']!r}; known: {FAMILIES}")
        for key in ("pixel_mean", "pixel_std"):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        return cls(**data)


def _section(section_cls: type, values: dict[str, Any], where: str) -> Any:
    if section_cls is DecoderConfig:
        values = _without_retired_keys(values)
    if "pretrained_path" in values and section_cls in (BackboneConfig, TextConfig):
        values = _without_pretrained_path(values, where)
    known = {f.name: f for f in dataclasses.fields(section_cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown keys in model config section {where!r}: {sorted(unknown)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return section_cls(**converted)


def _without_retired_keys(values: dict[str, Any]) -> dict[str, Any]:
    off = sorted(key for key in RETIRED_DECODER_KEYS if key in values and not values[key])
    if off:
        raise ValueError(
            f"model config section 'decoder' switches off {off}: that decoder predates parts "
            "every model now has, so its weights no longer load (retrain, or fine-tune from a "
            "current model)"
        )
    return {k: v for k, v in values.items() if k not in RETIRED_DECODER_KEYS}


def _without_pretrained_path(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Cards written before the architecture and the initialisation were separated name the
    file a part was first initialised from; the weights file holds that part since."""
    values = dict(values)
    path = values.pop("pretrained_path")
    if path:
        option = {"backbone": "pretrained_backbone", "text": "pretrained_text"}[where]
        LOG.warning(
            "model config: %s.pretrained_path %r is ignored (a saved model's weights hold its "
            "%s); to start training from that file, set the training config's %s",
            where,
            path,
            where,
            option,
        )
    return values


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
