"""An export folder as the torch-free runtime reads it, and the runtime files written into it.

``seem-ros export`` writes the graphs (:mod:`seem_ros.engine.onnx_export`) and, through
:func:`write_runtime_files`, what running them without PyTorch needs besides: the model card,
the heads' tensors (:func:`~seem_ros.runtime.exported_heads.head_tables`) and CLIP's BPE
vocabulary for the tokenizer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.export_manifest import MANIFEST_NAME, ExportError, ExportManifest
from ..model.card import ModelCard
from ..model.weights import WeightsError
from .exported_heads import CARD_FILE, HEADS_FILE, head_tables
from .tokenizer import BPE_FILE, bundled_bpe_path

if TYPE_CHECKING:
    from ..model.build import AnySEEM


def is_export_folder(path: str | Path) -> bool:
    """Whether ``path`` is an export folder (or its ``manifest.json``), not a weights file."""
    path = Path(path)
    return (path / MANIFEST_NAME).is_file() if path.is_dir() else path.name == MANIFEST_NAME


def write_runtime_files(model: AnySEEM, card: ModelCard, folder: Path) -> dict[str, str | None]:
    """Write the card, the heads' tensors and the BPE vocabulary into ``folder``; returns the
    manifest fields naming them (``bpe_vocab`` None where open_clip's copy is not installed:
    text prompts then need the PyTorch path)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    card.save(folder / CARD_FILE)
    save_file(head_tables(model), str(folder / HEADS_FILE))
    source = bundled_bpe_path()
    if source is not None:
        shutil.copyfile(source, folder / BPE_FILE)
    return {"card": CARD_FILE, "heads": HEADS_FILE, "bpe_vocab": BPE_FILE if source else None}


def load_export(folder: Path) -> tuple[ExportManifest, ModelCard]:
    """An export folder's manifest and model card, checked for the torch-free runtime.

    Raises:
        WeightsError: not an export folder, a file it lists is missing, or it was made before
            the torch-free runtime (graphs only) and must be exported again.
    """
    try:
        manifest = ExportManifest.load(Path(folder))
    except ExportError as error:
        raise WeightsError(str(error)) from error
    if not manifest.runs_without_torch:
        raise WeightsError(
            f"{manifest.folder} holds graphs only (exported before the torch-free runtime): "
            "export it again with `seem-ros export --model WEIGHTS --out FOLDER`"
        )
    assert manifest.card is not None
    try:
        card = ModelCard.load(manifest.path(manifest.card))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"cannot read the model card of {manifest.folder}: {error}") from error
    return manifest, card
