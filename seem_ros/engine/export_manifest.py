"""What an export folder holds (``manifest.json``), readable without torch or onnx.

The engines that run exported graphs (ONNX Runtime, TensorRT) and the torch-free runtime read
exports through this module only; writing them is :mod:`.onnx_export`'s job, which needs
PyTorch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..model.feature_names import feature_names

DEFAULT_OPSET = 17  # TensorRT 10's ONNX parser supports opsets 9..20
DEFAULT_GROUP_COUNTS = (1, 10, 50)
# Visual-prompt slots per object in exported decoders. Decoding cost grows with slots, and a
# robot's object rarely has more than a few clicks/boxes at once (older clicks live on in the
# memory mask), so graphs take 8; objects with more keep their box/mask/scribbles and newest clicks.
DEFAULT_EXPORT_SLOTS = 8
MANIFEST_NAME = "manifest.json"
IMAGE_INPUT = "image"
TEXT_INPUT = "tokens"
TEXT_OUTPUT = "text_embeds"
OFFICIAL_TEXT_OUTPUTS = ("token_embeds", "sentence_embeds")
METADATA_PREFIX = "seem_ros."


class ExportError(RuntimeError):
    """A graph could not be exported, or an export folder is missing or inconsistent."""


@dataclass
class ExportManifest:
    """What an export folder holds; written as ``manifest.json`` beside the graphs."""

    model_sha256: str
    config_name: str
    image_size: int
    opset: int
    encoder: str
    decoders: dict[int, str]
    text_encoder: str | None = None
    slots: int | None = None  # visual-prompt slots of the decoders (our family)
    family: str = "seem_ros"
    input_hw: tuple[int, int] | None = None  # the encoder's padded input (None: square)
    samples: int | None = None  # official family: prompt pixels per polarity in the decoders
    text_length: int | None = None  # official family: phrase tokens in the decoders
    # official family: decoders without the grounding and reference branches, for prompt sets
    # of clicks / boxes / scribbles / masks / memory only (a third of the full graphs' work)
    visual_decoders: dict[int, str] = field(default_factory=dict)
    graph_sha256: dict[str, str] = field(default_factory=dict)
    # what the torch-free runtime (``Segmenter.from_export``) needs besides the graphs: the
    # model card (JSON), the few tensors it computes with outside the graphs (safetensors, see
    # ``seem_ros.runtime.heads``) and the tokenizer's BPE vocabulary (CLIP's, gzipped)
    card: str | None = None
    heads: str | None = None
    bpe_vocab: str | None = None
    folder: Path = field(default=Path("."), compare=False)

    @property
    def group_counts(self) -> tuple[int, ...]:
        return tuple(sorted(self.decoders))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return feature_names(self.family)

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        """The encoder's input shape."""
        height, width = self.input_hw or (self.image_size, self.image_size)
        return (1, 3, height, width)

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def runs_without_torch(self) -> bool:
        """Whether the export carries what ``Segmenter.from_export`` needs (exports made before
        the torch-free runtime have graphs only)."""
        return self.card is not None and self.heads is not None

    def decoder_for(self, groups: int, *, visual_only: bool = False) -> tuple[int, Path]:
        """The smallest exported decoder that fits ``groups`` objects: (its G, its path); with
        ``visual_only``, its visual-only variant where the export has one."""
        fitting = [g for g in self.group_counts if g >= groups]
        if not fitting:
            raise ExportError(
                f"{groups} prompted objects but the largest exported decoder takes "
                f"{max(self.group_counts)}; re-export with --groups including {groups}"
            )
        graphs = self.visual_decoders if visual_only and self.visual_decoders else self.decoders
        return fitting[0], self.path(graphs[fitting[0]])

    def save(self) -> Path:
        data = asdict(self)
        data.pop("folder")
        data["decoders"] = {str(g): name for g, name in self.decoders.items()}
        data["visual_decoders"] = {str(g): name for g, name in self.visual_decoders.items()}
        target = self.folder / MANIFEST_NAME
        target.write_text(json.dumps(data, indent=2) + "\n")
        return target

    @classmethod
    def load(cls, folder: Path) -> ExportManifest:
        folder = Path(folder)
        source = folder / MANIFEST_NAME if folder.is_dir() else folder
        if not source.is_file():
            raise ExportError(f"no {MANIFEST_NAME} in {folder}: run `seem-ros export` first")
        try:
            data = json.loads(source.read_text())
            data["decoders"] = {int(g): name for g, name in data["decoders"].items()}
            data["visual_decoders"] = {
                int(g): name for g, name in data.get("visual_decoders", {}).items()
            }
            if data.get("input_hw") is not None:
                data["input_hw"] = tuple(data["input_hw"])
            manifest = cls(**data, folder=source.parent)
        except (ValueError, KeyError, TypeError) as error:
            raise ExportError(f"invalid export manifest {source}: {error}") from error
        graphs = (*manifest.decoders.values(), *manifest.visual_decoders.values())
        runtime = (manifest.text_encoder, manifest.card, manifest.heads, manifest.bpe_vocab)
        for name in (manifest.encoder, *graphs, *filter(None, runtime)):
            if not manifest.path(name).is_file():
                raise ExportError(f"{source} lists {name} but the file is missing")
        return manifest
