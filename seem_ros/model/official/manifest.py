"""The key names and shapes of the official SEEM v1 checkpoints, and weights built from them.

The manifests (``manifests/manifest_<config>_v1.json``) were derived from the official code
instantiated with random weights: ``entries`` maps every state-dict key to its shape, dtype and
kind (param | buffer), in state-dict order. They identify a checkpoint's configuration from its
key set and give tests random weights of exactly the official shapes; no real weights are needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import torch

MANIFEST_NAMES = {
    "seem_focalt_v1": "manifest_focalt_v1.json",
    "seem_focall_v1": "manifest_focall_v1.json",
    "seem_samvitb_v1": "manifest_samvitb_v1.json",
    "seem_samvitl_v1": "manifest_samvitl_v1.json",
}

TRAINING_ONLY_KEYS = ("criterion.empty_weight",)
"""Keys of the official checkpoints that inference never reads (the loss's class weights)."""


@dataclass(frozen=True)
class ManifestEntry:
    shape: tuple[int, ...]
    dtype: str
    kind: str  # "param" | "buffer"


@dataclass(frozen=True)
class Manifest:
    """One official configuration's checkpoint layout."""

    config: str  # our config name, e.g. "seem_focalt_v1"
    official_config: str  # the upstream YAML it was derived from
    official_commit: str
    entries: dict[str, ManifestEntry]

    @property
    def num_parameters(self) -> int:
        return sum(_numel(e.shape) for e in self.entries.values() if e.kind == "param")


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


@cache
def load_manifest(config: str) -> Manifest:
    """The manifest of an official config name (``seem_focalt_v1``, ...)."""
    if config not in MANIFEST_NAMES:
        raise ValueError(f"no official manifest for {config!r}; known: {sorted(MANIFEST_NAMES)}")
    resource = resources.files("seem_ros.model.official") / "manifests" / MANIFEST_NAMES[config]
    data = json.loads(resource.read_text())
    entries = {
        key: ManifestEntry(tuple(value["shape"]), value["dtype"], value["kind"])
        for key, value in data["entries"].items()
    }
    return Manifest(config, data["config"], data["official_commit"], entries)


def random_official_state_dict(
    config: str, *, seed: int = 0, include_training_keys: bool = True
) -> dict[str, torch.Tensor]:
    """Random float32 weights with exactly the official keys and shapes, deterministic per seed.

    Scaled so a forward pass stays numerically tame (as a trained network's would): matrices
    and convolutions ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1^2), biases and embeddings
    ~ N(0, 0.02^2); ``logit_scale`` is log(1/0.07) as CLIP initialises it, and the dilation
    kernel is the official all-ones 3x3.
    """
    manifest = load_manifest(config)
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, entry in manifest.entries.items():
        if not include_training_keys and key in TRAINING_ONLY_KEYS:
            continue
        state[key] = _random_tensor(key, entry.shape, generator)
    return state


def _random_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    leaf = key.rsplit(".", 1)[-1]
    if key == "dilation_kernel" or key == "criterion.empty_weight":
        return torch.ones(shape)
    if leaf == "logit_scale":
        return torch.full(shape, 2.6592600345611572)  # log(1 / 0.07)
    noise = torch.randn(shape, generator=generator)
    # norm layers: named so, or a 1-D "weight" (GroupNorms inside nn.Sequential slots)
    is_norm = leaf in ("weight", "bias") and (
        any(part in key for part in ("norm", "ln_")) or (leaf == "weight" and len(shape) == 1)
    )
    if is_norm:
        return 1.0 + 0.1 * noise if leaf == "weight" else 0.02 * noise
    if leaf.startswith("gamma"):  # FocalNet layer scale
        return 1.0 + 0.1 * noise
    if len(shape) <= 1 or "embedding" in key or key.endswith(("_embed.weight", "_feat.weight")):
        return 0.02 * noise
    fan_in = _numel(shape[1:]) if len(shape) > 2 else shape[0] if leaf != "weight" else shape[1]
    return noise / max(1, fan_in) ** 0.5
