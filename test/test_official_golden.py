"""Our official-SEEM v1 modules reproduce the OFFICIAL code, tensor by tensor.

``test/data/official_golden_focalt.npz`` was recorded from the official implementation
(UX-Decoder/Segment-Everything-Everywhere-All-At-Once v1.0) by
``tools/official_parity/record_golden.py``: random official weights (seed 0), a 128x128 noise
image, three sentences, a click (two rounds: then a negative click and round 1's mask as
memory) and a referring phrase, with the project's deterministic rules for the official random
draws. For each intermediate tensor it holds 256 values at fixed flat indices, the shape, mean
and std. Each test rebuilds the inputs from the recipe in the file, runs our modules and
compares in pipeline order; a failure names the FIRST tensor that drifts and lists them all.

Error measure: max |ours - official| over the stored values, divided by the official tensor's
std (and the same for its mean and std); tolerance 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seem_ros.model.config import load_config
from seem_ros.model.official.focalnet import FocalNet
from seem_ros.model.official.language import LanguageEncoder
from seem_ros.model.official.manifest import random_official_state_dict
from seem_ros.model.official.pixel_decoder import TransformerEncoderPixelDecoder
from seem_ros.model.official.prompt_tensors import (
    OfficialPromptTensors,
    empty_official_prompt_tensors,
    memory_slot_owners,
    strided_pixels,
)
from seem_ros.model.official.seem_v1 import OfficialSEEM

GOLDEN = Path(__file__).parent / "data" / "official_golden_focalt.npz"
TOLERANCE = 1e-4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def golden() -> tuple[dict[str, np.ndarray], dict]:
    with np.load(GOLDEN) as data:
        arrays = {key: data[key] for key in data.files}
    return arrays, json.loads(str(arrays["meta"]))


@pytest.fixture(scope="module")
def model(golden) -> OfficialSEEM:
    _, recipe = golden
    state = random_official_state_dict(
        recipe["config"], seed=recipe["weights_seed"], include_training_keys=False
    )
    return OfficialSEEM.from_state_dict(load_config(recipe["config"]), state)


def _golden_image(recipe: dict) -> torch.Tensor:
    size = recipe["image_size"]
    generator = torch.Generator().manual_seed(recipe["image_seed"])
    return torch.rand(1, 3, size, size, generator=generator) * 255.0


def _click_mask(size: int, x: int, y: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = True
    return mask


def _spatial_prompts(
    model: OfficialSEEM,
    size: int,
    positive: np.ndarray,
    negative: np.ndarray | None,
    prev_mask: torch.Tensor | None,
) -> OfficialPromptTensors:
    """One object's click prompts as the official code samples them (all pixels, raster
    order; coordinates pixel / padded size), with round 1's mask as memory if given."""
    spec = model.config.official
    samples = spec.max_spatial_len
    stride = model.mask_stride
    prompts = empty_official_prompt_tensors(
        groups=1,
        samples=samples,
        text_length=0,
        embed_dim=spec.dim_proj,
        memory_slots=spec.spatial_memories,
        mask_hw=(size // stride, size // stride),
    )
    for polarity, mask in enumerate((positive, negative)):
        if mask is None:
            continue
        pixels = strided_pixels(mask, samples)  # (n, 2) row, col
        count = len(pixels)
        prompts.spatial_coords[0, 0, polarity, :count, 0] = pixels[:, 1] / size
        prompts.spatial_coords[0, 0, polarity, :count, 1] = pixels[:, 0] / size
        prompts.spatial_valid[0, 0, polarity, :count] = 1.0
    if prev_mask is not None:
        prompts.prev_mask[0, 0] = prev_mask.numpy()
        owners = memory_slot_owners(spec.spatial_memories, 1)
        prompts.memory_slots[0, 0] = (owners == 0).astype(np.float32)
    prompts.group_valid[0, 0] = 1.0
    return prompts.to_torch()


def _grounding_prompts(model: OfficialSEEM, size: int, phrase: str) -> OfficialPromptTensors:
    tokens, sentence = model.phrase_tokens(phrase)
    spec = model.config.official
    stride = model.mask_stride
    prompts = empty_official_prompt_tensors(
        groups=1,
        samples=0,
        text_length=tokens.shape[0],
        embed_dim=spec.dim_proj,
        memory_slots=spec.spatial_memories,
        mask_hw=(size // stride, size // stride),
    )
    prompts.text_tokens[0, 0] = tokens.numpy()
    prompts.text_token_valid[0, 0] = 1.0
    prompts.text_embed[0, 0] = sentence.numpy()
    prompts.text_valid[0, 0] = 1.0
    prompts.group_valid[0, 0] = 1.0
    return prompts.to_torch()


class _SpatialLayerMasks:
    """Records the spatial queries' mask embeddings at every prediction the decoder makes
    (its initial one, after each layer but the last, and the final one) by watching the
    decoder's ``heads``; masks are those embeddings times the mask features, as upstream."""

    def __init__(self, model: OfficialSEEM):
        self.predictor = model.predictor
        self.queries = model.config.official.spatial_queries
        self.embeds: list[torch.Tensor] = []

    def __enter__(self):
        original = self.predictor.heads

        def heads(x):
            out = original(x)
            if x.dim() == 4 and x.shape[2] == self.queries:  # (B, G, K, D): spatial rows
                self.embeds.append(out[1][0, 0])
            return out

        self.predictor.heads = heads
        return self

    def __exit__(self, *exc):
        del self.predictor.heads

    def masks(self, mask_features: torch.Tensor) -> list[torch.Tensor]:
        return [torch.einsum("kc,chw->khw", e, mask_features[0]) for e in self.embeds]


def _compare(arrays: dict[str, np.ndarray], recipe: dict, ours: dict[str, torch.Tensor]):
    """Rows (name, value error, mean error, std error) in pipeline order, and the first
    failing name (None if all pass). Tensors absent on our side are failures."""
    rows, first = [], None
    for name in recipe["order"]:
        if name not in ours:
            continue
        tensor = ours[name].detach().float()
        shape = tuple(int(s) for s in arrays[f"{name}.shape"])
        if tuple(tensor.shape) != shape:
            rows.append((name, f"shape {tuple(tensor.shape)} != official {shape}", "", ""))
            first = first or name
            continue
        flat = tensor.reshape(-1)
        scale = max(float(arrays[f"{name}.std"]), 1e-6)
        values = flat[torch.from_numpy(arrays[f"{name}.index"]).long()].numpy()
        value_err = float(np.abs(values - arrays[f"{name}.values"]).max()) / scale
        mean_err = abs(float(flat.mean()) - float(arrays[f"{name}.mean"])) / scale
        std_err = abs(float(flat.std()) / scale - 1.0) if scale > 1e-6 else 0.0
        rows.append((name, f"{value_err:.2e}", f"{mean_err:.2e}", f"{std_err:.2e}"))
        if first is None and max(value_err, mean_err, std_err) > TOLERANCE:
            first = name
    return rows, first


def _assert_matches(golden, ours: dict[str, torch.Tensor], names: list[str]) -> None:
    arrays, recipe = golden
    missing = [name for name in names if name not in ours]
    assert not missing, f"our side produced no {missing}"
    rows, first = _compare(arrays, recipe, {name: ours[name] for name in names})
    table = "\n".join(f"  {n:34s} values {v:>9s}  mean {m:>9s}  std {s:>9s}" for n, v, m, s in rows)
    assert first is None, f"first drift from the official code at {first!r}:\n{table}"


# ------------------------------------------------------------------ stages, in pipeline order
@pytest.fixture(scope="module")
def features(golden, model):
    _, recipe = golden
    image = _golden_image(recipe)
    with torch.inference_mode():
        normalised = (image - model.pixel_mean) / model.pixel_std
        backbone = model.backbone(normalised)
        mask_features, levels = model.sem_seg_head.pixel_decoder(backbone)
    return normalised, backbone, mask_features, levels


def test_modules_are_the_official_architecture(model):
    assert isinstance(model.backbone, FocalNet)
    assert isinstance(model.sem_seg_head.pixel_decoder, TransformerEncoderPixelDecoder)
    assert isinstance(model.language, LanguageEncoder)


def test_backbone_matches_official(golden, features):
    normalised, backbone, _, _ = features
    ours = {"image.normalised": normalised[0]}
    ours.update({f"backbone.{k}": v[0] for k, v in backbone.items()})
    _assert_matches(golden, ours, ["image.normalised"] + [f"backbone.res{i}" for i in range(2, 6)])


def test_pixel_decoder_matches_official(golden, features):
    _, _, mask_features, levels = features
    ours = {"pixel.mask_features": mask_features[0]}
    ours.update({f"pixel.multi_scale.{i}": level[0] for i, level in enumerate(levels)})
    _assert_matches(golden, ours, list(ours))


def test_tokenizer_matches_official(golden, model):
    arrays, recipe = golden
    ids = model.language.tokenize(recipe["texts"]).input_ids.numpy()
    np.testing.assert_array_equal(ids, arrays["text.input_ids"])


def test_sentence_embeddings_match_official(golden, model):
    _, recipe = golden
    with torch.inference_mode():
        embeds = model.encode_text(recipe["texts"])
    _assert_matches(golden, {"text.embeddings": embeds}, ["text.embeddings"])


def test_generic_queries_match_official(golden, model, features):
    _, recipe = golden
    _, _, mask_features, levels = features
    size = recipe["image_size"]
    spec = model.config.official
    prompts = empty_official_prompt_tensors(
        groups=0,
        samples=0,
        text_length=0,
        embed_dim=spec.dim_proj,
        memory_slots=spec.spatial_memories,
        mask_hw=tuple(mask_features.shape[-2:]),
    ).to_torch()
    assert mask_features.shape[-1] == size // model.mask_stride
    with torch.inference_mode():
        outputs = model.decode((mask_features, *levels), prompts)
        class_embeds = model.encode_text(recipe["texts"])
        logits = model.classify(outputs["object_embeds"][0], class_embeds)
    ours = {"generic.pred_masks": outputs["object_masks"][0], "generic.pred_logits": logits}
    _assert_matches(golden, ours, ["generic.pred_logits", "generic.pred_masks"])


def test_click_rounds_match_official_layer_by_layer(golden, model, features):
    """Round 1: a positive click; round 2: plus a negative click, round 1's mask as memory."""
    _, recipe = golden
    _, _, mask_features, levels = features
    size = recipe["image_size"]
    positive = _click_mask(size, *recipe["click_xy"])
    negative = _click_mask(size, *recipe["negative_xy"])
    ours: dict[str, torch.Tensor] = {}
    prev = None
    for rounds in (1, 2):
        prompts = _spatial_prompts(model, size, positive, negative if rounds == 2 else None, prev)
        with torch.inference_mode(), _SpatialLayerMasks(model) as recorder:
            outputs = model.decode((mask_features, *levels), prompts)
        for layer, masks in enumerate(recorder.masks(mask_features)):
            ours[f"click.round{rounds}.layer{layer}"] = masks
        prev = outputs["memory"][0, 0]
        ours[f"click.round{rounds}.prev_mask"] = prev[None]
    names = [
        f"click.round{r}.{part}"
        for r in (1, 2)
        for part in [*(f"layer{i}" for i in range(model.predictor.num_layers + 1)), "prev_mask"]
    ]
    _assert_matches(golden, ours, names)


def test_referring_matches_official(golden, model, features):
    _, recipe = golden
    _, _, mask_features, levels = features
    size = recipe["image_size"]
    with torch.inference_mode():
        tokens, _ = model.phrase_tokens(recipe["phrase"])
        prompts = _grounding_prompts(model, size, recipe["phrase"])
        outputs = model.decode((mask_features, *levels), prompts)
    ours = {"referring.token_embeddings": tokens, "referring.mask": outputs["group_masks"][0, 0]}
    _assert_matches(golden, ours, list(ours))
