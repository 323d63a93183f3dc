"""Official SEEM v1 checkpoints -> our safetensors + model card.

The official checkpoints are flat float32 state dicts whose keys our official modules share,
so conversion is a check, not a rename: detect the configuration from the key set, verify
every key and shape against its manifest, drop training-only entries, and write the weights
with a card that says where they came from (and carries the COCO panoptic class embeddings,
which take the language encoder ~10,000 sentences to compute).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..build import file_sha256
from ..card import ModelCard
from ..config import available_configs, load_config
from ..weights import WeightsError, load_state_dict_file
from .manifest import MANIFEST_NAMES, TRAINING_ONLY_KEYS, Manifest, load_manifest
from .seem_v1 import OfficialSEEM
from .vocabulary import COCO_PANOPTIC_CLASSES, COCO_STUFF_CLASSES

LICENCE_NOTE = (
    "Architecture code: seem_ros (Apache-2.0), written after the official SEEM v1 code "
    "(UX-Decoder/Segment-Everything-Everywhere-All-At-Once, Apache-2.0). The weights are the "
    "publisher's and carry the publisher's licence and terms, not ours."
)
SHOWN_KEYS = 5


class ConversionError(WeightsError):
    """The checkpoint is not an official SEEM v1 checkpoint of a known configuration."""


@dataclass(frozen=True)
class KeyReport:
    """How a state dict's keys and shapes differ from a manifest's."""

    config: str
    missing: list[str]
    unexpected: list[str]
    misshaped: list[str]  # "key: found (a, b), expected (c, d)"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.misshaped)

    def describe(self) -> str:
        parts = []
        for title, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.misshaped),
        ):
            if keys:
                shown = "; ".join(keys[:SHOWN_KEYS])
                more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
                parts.append(f"{len(keys)} {title}: {shown}{more}")
        return ", ".join(parts) or "all keys and shapes match"


def compare_keys(state: dict[str, torch.Tensor], manifest: Manifest) -> KeyReport:
    """Every key and shape of ``state`` against ``manifest`` (training-only keys optional)."""
    expected = manifest.entries
    missing = [k for k in expected if k not in state and k not in TRAINING_ONLY_KEYS]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k}: found {tuple(state[k].shape)}, expected {expected[k].shape}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k].shape
    ]
    return KeyReport(manifest.config, missing, unexpected, misshaped)


def detect_config(state: dict[str, torch.Tensor]) -> KeyReport:
    """The official configuration whose key set best matches ``state`` (check ``.ok``)."""
    reports = [compare_keys(state, load_manifest(name)) for name in MANIFEST_NAMES]
    return min(
        reports, key=lambda r: (len(r.missing) + len(r.unexpected) + len(r.misshaped), r.config)
    )


def read_official_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """An official ``.pt`` (``torch.load(weights_only=True)``) or ``.safetensors`` with the
    official keys; a checkpoint wrapped as ``{"model": state}`` is unwrapped."""
    state = load_state_dict_file(Path(path))
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ConversionError(f"{path} holds no tensors")
    return tensors


def convert_checkpoint(
    source: Path, *, progress: bool = False
) -> tuple[OfficialSEEM, ModelCard, KeyReport]:
    """Read, check and load an official checkpoint; the card carries provenance, licence notes
    and the COCO panoptic class embeddings. Raises :class:`ConversionError` on any mismatch."""
    source = Path(source)
    state = read_official_checkpoint(source)
    report = detect_config(state)
    if not report.ok:
        raise ConversionError(
            f"{source.name} is not an official SEEM v1 checkpoint (closest: {report.config}): "
            f"{report.describe()}"
        )
    if report.config not in available_configs():  # a manifest without a model config
        raise ConversionError(
            f"{source.name} matches the official {report.config} layout, which seem_ros has no "
            f"model config for; available: {available_configs()}"
        )
    manifest = load_manifest(report.config)
    state = {
        k: v.detach().to(torch.float32).contiguous()
        for k, v in state.items()
        if k not in TRAINING_ONLY_KEYS
    }
    config = load_config(report.config)
    model = OfficialSEEM.from_state_dict(config, state)
    vocabulary = list(COCO_PANOPTIC_CLASSES)
    with torch.inference_mode():
        coco = model.embed_class_names(vocabulary, progress=progress)
    card = ModelCard(
        config=config,
        vocabulary=vocabulary,
        stuff_classes=list(COCO_STUFF_CLASSES),
        trained=True,
        provenance={
            "source_file": source.name,
            "source_sha256": file_sha256(source),
            "converted_by": "seem-ros convert",
            "official_config": manifest.official_config,
            "official_commit": manifest.official_commit,
            "licence": LICENCE_NOTE,
        },
    )
    card.add_class_embeddings(vocabulary, coco.float().cpu().numpy())
    return model, card, report
