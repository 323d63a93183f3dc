"""Build models from configs, and save/load them as safetensors + a JSON model card.

The model never reads files itself; this module does (segment-anything's ``build_sam`` idea).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .card import ModelCard
from .config import ModelConfig, load_config
from .official.seem_v1 import OfficialSEEM
from .seem import SEEM
from .weights import WeightsError, file_sha256

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"


AnySEEM = SEEM | OfficialSEEM


def build_model(config: ModelConfig | str, *, seed: int | None = 0) -> AnySEEM:
    """A randomly initialised model of either family (deterministic for a given seed)."""
    if isinstance(config, str):
        config = load_config(config)
    if seed is not None:
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
    model = OfficialSEEM(config) if config.family == "official_v1" else SEEM(config)
    if seed is not None:
        torch.random.set_rng_state(state)
    return model.eval()


def card_path_for(weights_path: Path) -> Path:
    return Path(weights_path).with_suffix(CARD_SUFFIX)


def save_model(
    model: AnySEEM, path: Path, card: ModelCard, *, dtype: torch.dtype | None = None
) -> Path:
    """Write ``path`` (.safetensors) and its card (.json beside it); returns the weights path.

    ``dtype=torch.float16`` halves the file (the shipped demo model); loading casts back to the
    model's float32, so only the rounding of the stored values differs.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        path = path.with_suffix(WEIGHTS_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    stored = str(dtype or torch.float32).removeprefix("torch.")
    card.provenance["weights_dtype"] = stored
    save_file(
        state,
        str(path),
        metadata={"format": "seem_ros", "config": card.config.name, "dtype": stored},
    )
    card.config = model.config
    card.weights_sha256 = file_sha256(path)
    card.save(card_path_for(path))
    return path


def load_model(path: Path, *, device: str | torch.device = "cpu") -> tuple[AnySEEM, ModelCard]:
    """Load weights + card; raises :class:`WeightsError` with the reason on any problem.

    The weights are read before the card is looked at, so a corrupt or truncated weight file
    is reported as such even when its card is missing too."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob(f"*{WEIGHTS_SUFFIX}"))
        if len(candidates) != 1:
            raise WeightsError(
                f"{path}: expected one {WEIGHTS_SUFFIX} file, found {len(candidates)}"
            )
        path = candidates[0]
    if not path.is_file():
        raise WeightsError(f"model weights not found: {path}")
    try:
        from safetensors.torch import load_file

        state = load_file(str(path), device=str(device))
    except Exception as error:  # safetensors raises several types for corrupt files
        raise WeightsError(f"cannot read {path} (corrupt or not safetensors): {error}") from error
    card_file = card_path_for(path)
    if not card_file.is_file():
        raise WeightsError(
            f"model card not found beside the weights: {card_file} (the weights themselves "
            "read fine; a converted or released model always has its .json card)"
        )
    try:
        card = ModelCard.load(card_file)
    except (ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"invalid model card {card_file}: {error}") from error
    if card.weights_sha256 and file_sha256(path) != card.weights_sha256:
        raise WeightsError(
            f"{path}: checksum differs from its model card (corrupt or replaced file)"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model = _model_holding(card.config, state, path)
    return model.to(device).eval(), card


def _model_holding(config: ModelConfig, state: dict[str, torch.Tensor], path: Path) -> AnySEEM:
    """A model of ``config`` with exactly ``state`` loaded (any mismatch: WeightsError)."""
    if config.family == "official_v1":
        try:
            return OfficialSEEM.from_state_dict(config, state)
        except RuntimeError as error:
            raise WeightsError(
                f"{path} does not match its config {config.name!r}: {error}"
            ) from error
    model = build_model(config, seed=None)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even when strict=False
        raise WeightsError(f"{path} does not match its config {config.name!r}: {error}") from error
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not match its config {config.name!r}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model


def load_into(config: ModelConfig | str, path: Path, *, seed: int = 0) -> SEEM:
    """Weights of ``path`` loaded into a fresh ``config`` model, for fine-tuning.

    The weights must fit the config exactly (same sizes, same parts); any mismatch is a
    :class:`WeightsError` that names the first differing parameters.
    """
    source, _ = load_model(path)
    model = build_model(config, seed=seed)
    try:
        missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    except RuntimeError as error:  # shape mismatches raise even when strict=False
        raise WeightsError(f"{path} cannot initialise {model.config.name!r}: {error}") from error
    missing = [key for key in missing if not _new_no_op_part(key, source.config, model.config)]
    if missing or unexpected:
        raise WeightsError(
            f"{path} cannot initialise {model.config.name!r}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model


def _new_no_op_part(key: str, source: ModelConfig, target: ModelConfig) -> bool:
    """Whether ``key`` belongs to a decoder part that ``target`` adds to ``source`` and that
    starts from what the source does without it, so the fine-tuning starts from exactly the
    source's outputs: the click-distance head (its last layer is zero), the query-grounding
    head (its learned term is zero, leaving the hand rule that answers phrases without it) and
    pixel-decoder context blocks beyond the source's (each starts as the identity)."""
    new_click_head = (
        source.decoder.click_distance_hidden == 0 and target.decoder.click_distance_hidden > 0
    )
    new_grounding_head = (
        source.decoder.grounding_hidden == 0 and target.decoder.grounding_hidden > 0
    )
    return (
        (key.startswith("decoder.click_distance.") and new_click_head)
        or (key.startswith("decoder.grounding.") and new_grounding_head)
        or _new_context_block(key, source.decoder.pixel_context_blocks)
    )


def _new_context_block(key: str, source_blocks: int) -> bool:
    prefix = "pixel_decoder.context."
    if not key.startswith(prefix):
        return False
    return int(key[len(prefix) :].split(".", 1)[0]) >= source_blocks
